// A Fastify app sharing its port with a per-connection WebSocket handler on /echo.
//
//   npx tsx examples/fastify/main.ts [port]     (default 8080)
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { websocketHandler } from 'humphrey-ws';

const fastify = Fastify();
fastify.get('/', async () => ({ hello: 'from fastify' }));

const echo = websocketHandler(async (stream) => {
  for await (const message of stream) await stream.send(message);
});
fastify.server.on('upgrade', (request, socket, head) => {
  if (request.url?.startsWith('/echo')) echo(request, socket, head, undefined);
  else socket.destroy();
});

await fastify.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 8080) });
console.log(`listening on http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void echo.shutdown().then(() => fastify.close()).then(() => process.exit(0)));
}
