#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (error) => {
    console.error(`humphrey-ws: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  },
);
