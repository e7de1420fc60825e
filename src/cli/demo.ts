import { PORT, type Flag } from './flags.js';
import type { Command } from './command.js';
import { createChatServer } from './chat.js';
import { onceStopSignal } from './serve.js';
import { metricsPortFlag, serveMetrics } from './metrics.js';

const DEFAULT_PORT = 8080;

const flags: Flag[] = [
  { name: 'host', value: 'HOST', help: 'address to listen on (0.0.0.0 to let phones on your network in)', defaultText: '127.0.0.1' },
  { name: 'port', value: 'PORT', parse: PORT, help: 'port to listen on; 0 picks a free one', defaultText: String(DEFAULT_PORT) },
  metricsPortFlag,
];

export const demo: Command = {
  name: 'demo',
  summary: 'The chat demo: a page with rooms, who is online and live figures, on our HTTP App.',
  flags,
  details: `Prints "listening on http://HOST:PORT" once ready; open it in two browser tabs. The page
and the WebSocket route /ws are served by one App, with the event app linked in; rooms are
topics. The page's live figures come from the event app's metrics, also served for Prometheus
at /metrics (and with --metrics-port on a port of their own). Everything is in memory. SIGINT or SIGTERM closes every client with 1001 and exits 0
(the pages reconnect by themselves when the server is back).`,
  async run({ values }) {
    const host = (values.get('host') as string | undefined) ?? '127.0.0.1';
    const port = (values.get('port') as number | undefined) ?? DEFAULT_PORT;
    const { app, chat } = createChatServer();
    const stopMetrics = await serveMetrics(values, chat);
    await app.run(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
    console.log(`listening on ${app.url}`);
    await onceStopSignal();
    await app.close();
    await stopMetrics?.();
    return 0;
  },
};
