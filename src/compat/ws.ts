/**
 * `humphrey-ws/ws`: the API of the `ws` package (v8) over this library's protocol core and
 * socket binding. Change `import WebSocket, { WebSocketServer } from 'ws'` to
 * `'humphrey-ws/ws'` (or `require('ws')` to `require('humphrey-ws/ws')`) and keep the code.
 * What differs from `ws` is listed in docs/ws-compat.md.
 */
import { WebSocket } from './ws/websocket.js';
import { WebSocketServer } from './ws/server.js';
import { createWebSocketStream } from './ws/stream.js';

export type { ClientOptions } from './ws/client.js';
export type { ServerOptions, VerifyClientInfo } from './ws/server.js';
export type { SendOptions, BinaryType } from './ws/websocket.js';
export { CloseEvent, ErrorEvent, Event, MessageEvent } from './ws/event-target.js';
export type { WsError } from './ws/errors.js';

// The default export carries the rest as static members, as `ws`'s does.
Object.assign(WebSocket, { WebSocket, WebSocketServer, Server: WebSocketServer, createWebSocketStream });

export { WebSocket, WebSocketServer, WebSocketServer as Server, createWebSocketStream };
export default WebSocket;
// `require('humphrey-ws/ws')` (Node's require of an ES module) returns this, the class itself.
export { WebSocket as 'module.exports' };
