import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { SocketBinding, type BindingEvents } from '../../src/node/socket.js';
import { encodeFrame, encodeShared, Opcode } from '../../src/protocol/frame.js';

/** A socket that records what is written to it: one entry per write call (or per writev). */
class RecordingSocket extends Duplex {
  writes: Buffer[][] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writes.push([chunk]);
    callback();
  }
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.writes.push(chunks.map((c) => c.chunk));
    callback();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.writes.flat());
  }
}

const events: BindingEvents = { onMessage() {}, onClose() {} };
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

function bind(): { socket: RecordingSocket; binding: SocketBinding } {
  const socket = new RecordingSocket();
  return { socket, binding: new SocketBinding(socket, events, { role: 'server' }) };
}

function frameBytes(payload: Buffer, isText: boolean): Buffer {
  return Buffer.concat(encodeFrame(isText ? Opcode.Text : Opcode.Binary, payload));
}

function payload(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

describe('SocketBinding output', () => {
  test('frames sent in one turn leave in one write, in order', async () => {
    const { socket, binding } = bind();
    const expected: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      const p = payload(i % 40, i);
      binding.connection.send(p, false);
      expected.push(frameBytes(p, false));
    }
    assert.equal(socket.writes.length, 0, 'nothing is written before the flush');
    assert.equal(binding.bufferedAmount, Buffer.concat(expected).length);
    await turn();
    assert.equal(socket.writes.length, 1);
    assert.equal(socket.writes[0]!.length, 1);
    assert.ok(socket.bytes.equals(Buffer.concat(expected)));
    assert.equal(binding.bufferedAmount, 0);
  });

  test('output of every size up to 200 KiB in one turn arrives whole and in order', async () => {
    for (const [count, size] of [[20, 100], [2000, 100], [40, 5000], [10, 16 * 1024], [10, 16 * 1024 + 1]] as const) {
      const { socket, binding } = bind();
      const expected: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const p = payload(size, i);
        binding.connection.send(p, i % 2 === 0);
        expected.push(frameBytes(p, i % 2 === 0));
      }
      await turn();
      assert.ok(socket.bytes.equals(Buffer.concat(expected)), `${count} x ${size}`);
    }
  });

  test('bytes already handed to the socket are never overwritten by later turns', async () => {
    const pairs = Array.from({ length: 3 }, () => bind());
    const expected: Buffer[][] = pairs.map(() => []);
    for (let round = 0; round < 20; round++) {
      pairs.forEach(({ binding }, i) => {
        for (let k = 0; k < 1 + ((round + i) % 7); k++) {
          const p = payload(10 + ((round * 13 + k * 7 + i) % 300), round * 10 + k);
          binding.connection.send(p, false);
          expected[i]!.push(frameBytes(p, false));
        }
      });
      await turn();
    }
    // The recorded writes are the very buffers handed over; they must still hold what was sent.
    pairs.forEach(({ socket }, i) => assert.ok(socket.bytes.equals(Buffer.concat(expected[i]!)), `connection ${i}`));
  });

  test('a large payload is written by reference, between the frames around it', async () => {
    const { socket, binding } = bind();
    const small = payload(10, 1);
    const large = payload(100 * 1024, 2);
    binding.connection.send(small, false);
    binding.connection.send(large, false);
    binding.connection.send(small, false);
    await turn();
    assert.ok(socket.bytes.equals(Buffer.concat([frameBytes(small, false), frameBytes(large, false), frameBytes(small, false)])));
    assert.ok(socket.writes.flat().some((chunk) => chunk === large), 'the payload itself was written, not a copy');
  });

  test('a message in pieces: small ones copied into the output, large ones written piece by piece', async () => {
    const { socket, binding } = bind();
    const small = [payload(10, 1), payload(20, 2)];
    const large = [payload(40000, 3), payload(30000, 4)];
    binding.connection.sendParts(small, false);
    binding.connection.sendParts(large, true);
    binding.connection.send(Buffer.from('after'), true);
    await turn();
    const expected = Buffer.concat([frameBytes(Buffer.concat(small), false), frameBytes(Buffer.concat(large), true), frameBytes(Buffer.from('after'), true)]);
    assert.ok(socket.bytes.equals(expected));
    const chunks = socket.writes.flat();
    assert.ok(chunks.includes(large[0]!) && chunks.includes(large[1]!), 'large pieces written as they are');
    assert.ok(!chunks.includes(small[0]!), 'small pieces copied');
  });

  test('a broadcast: connections with the same frames this turn are written one shared buffer', async () => {
    const shared = ['a', 'bb', 'ccc'].map((t) => encodeShared(Opcode.Text, Buffer.from(t)));
    const frames = shared.map((frame) => frame.bytes);
    const pairs = Array.from({ length: 5 }, () => bind());
    for (const frame of shared) for (const { binding } of pairs) binding.connection.sendShared(frame);
    // One connection also gets a frame of its own, in the middle.
    pairs[2]!.binding.connection.send(Buffer.from('own'), true);
    pairs[2]!.binding.connection.sendShared(shared[0]!);
    await turn();
    const all = Buffer.concat(frames);
    const own = Buffer.concat([all, frameBytes(Buffer.from('own'), true), frames[0]!]);
    pairs.forEach(({ socket }, i) => {
      assert.equal(socket.writes.length, 1);
      assert.ok(socket.bytes.equals(i === 2 ? own : all), `connection ${i}`);
    });
    const written = pairs.map(({ socket }) => socket.writes[0]![0]!);
    assert.equal(written[0], written[1], 'the join is shared');
    assert.equal(written[3], written[4], 'and shared again after a different list');
  });

  test('a flush in the middle of a turn writes what is queued so far; later frames leave in the turn flush', async () => {
    const { socket, binding } = bind();
    binding.connection.send(Buffer.from('one'), true);
    binding.flush();
    assert.equal(socket.writes.length, 1);
    binding.connection.send(Buffer.from('two'), true);
    binding.flush();
    binding.flush();
    binding.connection.send(Buffer.from('three'), true);
    await turn();
    assert.equal(socket.writes.length, 3);
    assert.ok(socket.bytes.equals(Buffer.concat(['one', 'two', 'three'].map((t) => frameBytes(Buffer.from(t), true)))));
  });
});
