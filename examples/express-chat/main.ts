// An Express app with a chat on /ws: a token check when the connection opens, rooms as
// topics, heartbeats to drop vanished clients, and a backpressure policy for slow readers.
//
//   npx tsx examples/express-chat/main.ts [port]     (default 8080)
//   then: npx humphrey-ws connect 'ws://127.0.0.1:8080/ws?token=secret-ada&room=blue'
import type { AddressInfo } from 'node:net';
import express from 'express';
import { AsyncWebSocketApp, rejectUpgrade } from 'humphrey-ws';

// Who a token belongs to. A real app asks its session store.
const users = new Map([
  ['secret-ada', 'ada'],
  ['secret-bob', 'bob'],
]);

interface Member {
  user: string;
  room: string;
}

const chat = AsyncWebSocketApp.unlinked<undefined, Member>(undefined, {
  maxMessageSize: 16 * 1024,
  // A client that stops reading is closed (1008) once 256 KiB are waiting for it.
  maxBufferedAmount: 256 * 1024,
  backpressure: 'close',
})
  .withHeartbeat({ intervalMs: 5000, timeoutMs: 10000 })
  .withUpgradeHook((request) => {
    const user = users.get(request.query.get('token') ?? '');
    if (user === undefined) return rejectUpgrade(401, 'a valid token is required');
    const room = request.query.get('room') ?? 'lobby';
    if (!/^[a-z0-9-]{1,32}$/.test(room)) return rejectUpgrade(400, 'bad room name');
    return { data: { user, room } };
  })
  .withStreamState((_stream, data) => data as Member)
  .withConnectHandler((stream) => {
    stream.subscribe(stream.state.room);
    stream.publish(stream.state.room, `${stream.state.user} joined`);
  })
  .withMessageHandler((stream, message) => {
    if (!message.isText) return;
    // To everyone in the room but the sender, who gets a receipt.
    const report = stream.publish(stream.state.room, `${stream.state.user}: ${message.text()}`);
    stream.send(`delivered to ${report.queued}`);
  })
  .withDisconnectHandler((stream) => {
    stream.publish(stream.state.room, `${stream.state.user} left`);
  });

const app = express();
app.get('/health', (_request, response) => {
  response.json({ connections: chat.sender().connectionCount });
});

const server = app.listen(Number(process.argv[2] ?? 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
chat.attach(server, { path: '/ws' });

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void chat.close().then(() => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }));
}
