// The published type declarations show only the API: internals are stripped from dist/*.d.ts
// (npm test builds first).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

function declaredMembers(file: string, className: string): string[] {
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(`declare class ${className}`);
  assert.ok(start >= 0, `${className} is declared in ${file}`);
  const body = text.slice(start, text.indexOf('\n}', start));
  // Public members only: private ones are not offered outside the class.
  return body
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('*') && !line.startsWith('/**') && !line.startsWith('private ') && !line.startsWith('declare class'));
}

test('WebSocketStream and Message declare no internal members', () => {
  const stream = declaredMembers('dist/stream/stream.d.ts', 'WebSocketStream').join('\n');
  for (const internal of ['onMessage', 'onMessageParts', 'onClose', 'nextResult', 'constructor']) {
    assert.ok(!stream.includes(internal), `WebSocketStream's declaration shows ${internal}`);
  }
  const message = declaredMembers('dist/message.d.ts', 'Message').join('\n');
  for (const internal of ['fromReceived', 'fromReceivedParts', 'unjoinedParts', 'frameForServer']) {
    assert.ok(!message.includes(internal), `Message's declaration shows ${internal}`);
  }
});

test('the public classes of the event app declare no constructors taking internals', () => {
  const facades = readFileSync('dist/event/facades.d.ts', 'utf8');
  assert.ok(!/constructor\(/.test(facades), 'AsyncStream/AsyncSender constructors are internal');
});

test('connect() options do not offer the socket adapter\'s internal defer hook', () => {
  for (const file of ['dist/protocol/connection.d.ts', 'dist/node/socket.d.ts', 'dist/stream/client.d.ts', 'dist/stream/stream.d.ts']) {
    const text = readFileSync(file, 'utf8');
    assert.ok(!/\bdefer\?:/.test(text), `${file} declares defer`);
  }
});
