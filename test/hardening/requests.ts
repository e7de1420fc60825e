// Raw HTTP request heads for the handshake tests.

import type { PeerTarget } from './peer.js';

export const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A request head with `lines` as its header lines. */
export function head(lines: string[], requestLine = 'GET / HTTP/1.1'): string {
  return `${requestLine}\r\n${lines.map((line) => `${line}\r\n`).join('')}\r\n`;
}

/** The header lines of a valid upgrade request. */
export function goodLines(target: PeerTarget): string[] {
  return [`Host: ${target.host}:${target.port}`, 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13'];
}

/** `goodLines` with the line starting with `name` replaced (or removed, for null). */
export function replaced(target: PeerTarget, name: string, line: string | null): string[] {
  const lines = goodLines(target).map((each) => (each.startsWith(`${name}:`) ? line : each));
  return lines.filter((each): each is string => each !== null);
}

/** An upgrade request without `Sec-WebSocket-Key`: refused with 400 after the head is read. */
export function withoutKey(target: PeerTarget): string {
  return head(replaced(target, 'Sec-WebSocket-Key', null));
}
