import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection } from '../../src/protocol/connection.js';
import { WebSocketError } from '../../src/protocol/errors.js';
import { encodeShared } from '../../src/protocol/frame.js';
import { FrameOutput } from '../../src/protocol/output.js';
import { bytes, cframe, decodeFrames, frame, hex, OP, recordingConnection, type ConnectionEvent } from './helpers.js';

const write = (h: string): ConnectionEvent => ({ type: 'write', data: hex(h).toString('hex') });
const closed = (code: number, reason = '', error?: string, closeCode?: number): ConnectionEvent => ({
  type: 'close',
  code,
  reason,
  error,
  closeCode,
});
const CLOSE_TRANSPORT: ConnectionEvent = { type: 'closeTransport' };
const closeFrom = (code: number, reason = '') => {
  const p = Buffer.alloc(2 + Buffer.byteLength(reason));
  p.writeUInt16BE(code, 0);
  p.write(reason, 2);
  return p;
};

function assertThrowsCode(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof WebSocketError && e.code === code);
}

describe('connection: control frames from the peer', () => {
  test('ping -> pong with the same payload written, then onPing', () => {
    const s = recordingConnection('server');
    s.receive(cframe({ opcode: OP.PING, payload: 'abc' }));
    s.receive(cframe({ opcode: OP.PING }));
    s.receive(cframe({ opcode: OP.PING, payload: Buffer.alloc(125, 0x5a) }));
    assert.deepEqual(s.take(), [
      write('8a03 616263'),
      { type: 'ping', data: '616263' },
      write('8a00'),
      { type: 'ping', data: '' },
      write('8a7d' + '5a'.repeat(125)),
      { type: 'ping', data: '5a'.repeat(125) },
    ]);
    // A client answers with a masked pong carrying the same payload.
    const c = recordingConnection('client');
    c.receive(frame({ opcode: OP.PING, payload: 'hello' }));
    assert.equal(c.written.length, 1);
    const [pong] = decodeFrames(c.written[0]!);
    assert.deepEqual({ ...pong, key: undefined }, { fin: true, opcode: OP.PONG, masked: true, key: undefined, payload: Buffer.from('hello') });
    assert.deepEqual(c.events[1], { type: 'ping', data: Buffer.from('hello').toString('hex') });
  });

  test('pong -> onPong, nothing written', () => {
    const s = recordingConnection('server');
    s.receive(cframe({ opcode: OP.PONG, payload: 'xyz' }), cframe({ opcode: OP.PONG }));
    assert.deepEqual(s.take(), [{ type: 'pong', data: '78797a' }, { type: 'pong', data: '' }]);
  });

  test('close with no payload -> empty close reply, onClose(1005)', () => {
    const s = recordingConnection('server');
    s.receive(cframe({ opcode: OP.CLOSE }));
    assert.deepEqual(s.take(), [write('8800'), CLOSE_TRANSPORT, closed(1005)]);
    assert.equal(s.conn.state, 'closed');
  });

  test('close 1000 + reason -> reply 1000, onClose(1000, reason)', () => {
    const s = recordingConnection('server');
    s.receive(cframe({ opcode: OP.CLOSE, payload: closeFrom(1000, 'bye κ') }));
    assert.deepEqual(s.take(), [write('8802 03e8'), CLOSE_TRANSPORT, closed(1000, 'bye κ')]);
  });

  test('the server closes the transport after the close handshake, the client does not', () => {
    const c = recordingConnection('client');
    c.receive(frame({ opcode: OP.CLOSE, payload: closeFrom(1001, 'going') }));
    assert.equal(c.written.length, 1);
    const [reply] = decodeFrames(c.written[0]!);
    assert.equal(reply!.opcode, OP.CLOSE);
    assert.equal(reply!.masked, true);
    assert.equal(reply!.payload.toString('hex'), '03e9');
    assert.deepEqual(c.events.slice(1), [closed(1001, 'going')]);
    assert.equal(c.conn.state, 'closed');
  });

  test('a 1-byte close payload -> close 1002', () => {
    const s = recordingConnection('server');
    s.receive(cframe({ opcode: OP.CLOSE, payload: hex('03') }));
    assert.deepEqual(s.take(), [write('8802 03ea'), CLOSE_TRANSPORT, closed(1002, '', 'WS_ERR_INVALID_CLOSE_PAYLOAD', 1002)]);
  });

  test('invalid close codes -> close 1002', () => {
    for (const code of [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
      const s = recordingConnection('server');
      s.receive(cframe({ opcode: OP.CLOSE, payload: closeFrom(code, 'r') }));
      assert.deepEqual(s.take(), [write('8802 03ea'), CLOSE_TRANSPORT, closed(1002, '', 'WS_ERR_INVALID_CLOSE_CODE', 1002)], `code ${code}`);
    }
  });

  test('valid close codes are echoed and reported', () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
      const s = recordingConnection('server');
      s.receive(cframe({ opcode: OP.CLOSE, payload: closeFrom(code, 'why') }));
      const echo = code.toString(16).padStart(4, '0');
      assert.deepEqual(s.take(), [write('8802' + echo), CLOSE_TRANSPORT, closed(code, 'why')], `code ${code}`);
    }
  });

  test('a close reason of 123 bytes is fine; invalid UTF-8 in it -> 1007', () => {
    const s = recordingConnection('server');
    s.receive(cframe({ opcode: OP.CLOSE, payload: closeFrom(1000, 'r'.repeat(123)) }));
    assert.deepEqual(s.take(), [write('880203e8'), CLOSE_TRANSPORT, closed(1000, 'r'.repeat(123))]);
    for (const bad of ['ff', 'c080', 'eda080', 'f4908080', 'e0a0', '80']) {
      const t = recordingConnection('server');
      t.receive(cframe({ opcode: OP.CLOSE, payload: bytes(hex('03e8'), 'ok', hex(bad)) }));
      assert.deepEqual(t.take(), [write('8802 03ef'), CLOSE_TRANSPORT, closed(1007, '', 'WS_ERR_INVALID_UTF8', 1007)], bad);
    }
  });

  test('anything after the close frame is ignored, in the same chunk or later', () => {
    const s = recordingConnection('server');
    s.receive(
      bytes(
        cframe({ opcode: OP.TEXT, payload: 'before' }),
        cframe({ opcode: OP.CLOSE, payload: closeFrom(1000) }),
        cframe({ opcode: OP.TEXT, payload: 'after' }),
        cframe({ opcode: OP.PING, payload: 'p' }),
      ),
    );
    s.receive(cframe({ opcode: OP.TEXT, payload: 'later' }), hex('ff ff ff ff'), cframe({ opcode: OP.CLOSE }));
    assert.deepEqual(s.take(), [{ type: 'message', text: true, data: Buffer.from('before').toString('hex') }, write('880203e8'), CLOSE_TRANSPORT, closed(1000)]);
    s.conn.transportClosed();
    assert.deepEqual(s.take(), []);
  });
});

describe('connection: the close handshake we start', () => {
  test('close(code, reason) writes the frame; the peer reply completes it; onClose once', () => {
    const s = recordingConnection('server');
    s.conn.close(1000, 'bye');
    assert.deepEqual(s.take(), [write('8805 03e8 627965')]);
    assert.equal(s.conn.state, 'closing');
    s.conn.close(1001); // already closing: nothing
    assert.deepEqual(s.take(), []);
    // Data still flows in while the peer has not answered.
    s.receive(cframe({ opcode: OP.TEXT, payload: 'late' }));
    // A ping is reported but not answered: no frame may follow our close.
    s.receive(cframe({ opcode: OP.PING, payload: 'p' }));
    s.receive(cframe({ opcode: OP.CLOSE, payload: closeFrom(1000, 'ok') }));
    assert.deepEqual(s.take(), [
      { type: 'message', text: true, data: Buffer.from('late').toString('hex') },
      { type: 'ping', data: '70' },
      CLOSE_TRANSPORT,
      closed(1000, 'ok'),
    ]);
    assert.equal(s.conn.state, 'closed');
    s.conn.transportClosed();
    s.receive(cframe({ opcode: OP.CLOSE }));
    s.conn.fail(new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'x', 1008));
    s.conn.close(1000);
    assert.deepEqual(s.take(), []);
  });

  test('close() without a code writes an empty close frame', () => {
    const s = recordingConnection('server');
    s.conn.close();
    assert.deepEqual(s.take(), [write('8800')]);
    s.receive(cframe({ opcode: OP.CLOSE }));
    assert.deepEqual(s.take(), [CLOSE_TRANSPORT, closed(1005)]);
  });

  test('a client that starts the close waits for the server to close the transport', () => {
    const c = recordingConnection('client');
    c.conn.close(4000, 'done');
    const [sent] = decodeFrames(c.written[0]!);
    assert.equal(sent!.masked, true);
    assert.equal(sent!.payload.toString('hex'), '0fa0' + Buffer.from('done').toString('hex'));
    c.receive(frame({ opcode: OP.CLOSE, payload: closeFrom(4000) }));
    assert.deepEqual(c.events.slice(1), [closed(4000)]);
    c.conn.transportClosed();
    assert.equal(c.events.length, 2);
  });

  test('a protocol error while closing: no second close frame, onClose once with the error', () => {
    const s = recordingConnection('server');
    s.conn.close(1000);
    s.take();
    s.receive(frame({ opcode: OP.TEXT, payload: 'unmasked' }));
    assert.deepEqual(s.take(), [CLOSE_TRANSPORT, closed(1002, '', 'WS_ERR_EXPECTED_MASK', 1002)]);
    s.conn.transportClosed();
    assert.deepEqual(s.take(), []);
  });

  test('close() validates its arguments and changes nothing when it throws', () => {
    const s = recordingConnection('server');
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535, -1, NaN, 1000.5, 3000.25]) {
      assertThrowsCode(() => s.conn.close(code), 'WS_ERR_INVALID_CLOSE_CODE');
    }
    assertThrowsCode(() => s.conn.close(1000, 'x'.repeat(124)), 'WS_ERR_INVALID_ARGUMENT');
    assertThrowsCode(() => s.conn.close(1000, 'é'.repeat(62)), 'WS_ERR_INVALID_ARGUMENT'); // 124 bytes
    assertThrowsCode(() => s.conn.close(undefined, 'reason without a code'), 'WS_ERR_INVALID_ARGUMENT');
    assert.deepEqual(s.take(), []);
    assert.equal(s.conn.state, 'open');
    s.conn.close(1000, 'é'.repeat(61) + 'x'); // 123 bytes
    assert.deepEqual(s.take(), [write('887d03e8' + Buffer.from('é'.repeat(61) + 'x').toString('hex'))]);
  });
});

describe('connection: sending', () => {
  test('server frames are unmasked and byte-exact', () => {
    const s = recordingConnection('server');
    s.conn.send(Buffer.from('Hello'), true);
    s.conn.send(hex('0102'), false);
    s.conn.ping(Buffer.from('p'));
    s.conn.pong();
    s.conn.sendFragment(Buffer.from('Hel'), true, false);
    s.conn.ping();
    s.conn.sendFragment(Buffer.from('l'), false, false); // isText of a continuation is ignored
    s.conn.sendFragment(Buffer.from('o'), true, true);
    s.conn.sendFragment(hex('ff'), false, true); // a one-fragment message
    s.conn.sendShared(encodeShared(OP.TEXT, Buffer.alloc(0)));
    assert.deepEqual(s.take(), [
      write('8105 48656c6c6f'),
      write('8202 0102'),
      write('8901 70'),
      write('8a00'),
      write('0103 48656c'),
      write('8900'),
      write('0001 6c'),
      write('8001 6f'),
      write('8201 ff'),
      write('8100'),
    ]);
  });

  test('a large server payload is written as header then payload, not copied', () => {
    const s = recordingConnection('server');
    const payload = Buffer.alloc(100000, 7);
    const seen: Buffer[] = [];
    const conn = new Connection(
      { write: (b) => seen.push(b), onMessage() {}, onClose() {}, closeTransport() {} },
      { role: 'server' },
    );
    conn.send(payload, false);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.toString('hex'), '827f00000000000186a0');
    assert.equal(seen[1], payload);
    assert.deepEqual(s.events, []);
  });

  test('a server whose owner batches its output gets every frame encoded into it; a client never does', () => {
    const output = new FrameOutput();
    const written: string[] = [];
    const events = {
      write: (b: Buffer) => written.push(b.toString('hex')),
      turnOutput: () => output,
      onMessage() {},
      onClose() {},
      closeTransport() {},
    };
    const server = new Connection(events, { role: 'server' });
    server.send(Buffer.from('hi'), true);
    server.sendFragment(Buffer.from('a'), false, false);
    server.sendFragment(Buffer.from('b'), false, true);
    server.ping(Buffer.from('p'));
    server.receive(cframe({ opcode: OP.PING, payload: 'q' }));
    server.sendShared(encodeShared(OP.TEXT, Buffer.alloc(0)));
    server.close(1000);
    assert.deepEqual(framedIn(output), ['1 hi true', '2 a false', '0 b true', '9 p true', '10 q true', `8 ${Buffer.from([3, 232]).toString()} true`]);
    assert.deepEqual(written, ['8100'], 'pre-encoded frames still go to write');
    const client = new Connection(events, { role: 'client' });
    output.clear();
    client.send(Buffer.from('hi'), true);
    assert.deepEqual(framedIn(output), []);
    assert.equal(written.length, 2);
  });

  test('messages in pieces: onMessageParts when the owner has it, else joined; sendParts writes pieces unjoined', () => {
    const payload = Buffer.alloc(50000, 'q');
    const wire = cframe({ opcode: OP.TEXT, payload });
    const got: string[] = [];
    const output = new FrameOutput();
    const written: Buffer[] = [];
    const withParts = new Connection(
      {
        write: (b) => written.push(Buffer.from(b)),
        turnOutput: () => output,
        onMessage: (m) => got.push(`whole ${m.length}`),
        onMessageParts: (parts, length, isText) => got.push(`parts ${parts.length} ${length} ${isText}`),
        onClose() {},
        closeTransport() {},
      },
      { role: 'server' },
    );
    // Copies: the connection unmasks in place.
    withParts.receive(Buffer.from(wire.subarray(0, 100)));
    withParts.receive(Buffer.from(wire.subarray(100)));
    assert.deepEqual(got, ['parts 2 50000 true']);
    const large = [Buffer.alloc(20000, 1), Buffer.alloc(30000, 2)];
    withParts.sendParts([Buffer.from('ab'), Buffer.from('cde')], false);
    withParts.sendParts(large, false);
    const [small, big, ...rest] = framedIn(output);
    assert.equal(small, '2 abcde true');
    assert.ok(big === `2 ${Buffer.concat(large).toString()} true`, 'the large message, pieces in order');
    assert.deepEqual(rest, []);
    assert.ok(output.chunks!.includes(large[0]!) && output.chunks!.includes(large[1]!), 'large pieces kept as they are, not joined');
    assert.deepEqual(written, []);

    const joined = recordingConnection('server');
    joined.receive(wire.subarray(0, 100), wire.subarray(100));
    assert.deepEqual(joined.take(), [{ type: 'message', text: true, data: payload.toString('hex') }]);
    joined.conn.sendParts([Buffer.from('ab'), Buffer.from('cde')], true);
    assert.deepEqual(joined.take(), [write('8105 6162636465')]);

    // A client masks: the pieces are joined into one masked frame.
    const client = recordingConnection('client');
    client.conn.sendParts([Buffer.from('ab'), Buffer.from('cde')], true);
    const [sent] = decodeFrames(client.written[0]!);
    assert.equal(sent!.masked, true);
    assert.equal(sent!.payload.toString(), 'abcde');
    // And it refuses like send() inside a fragmented send.
    client.conn.sendFragment(Buffer.from('x'), true, false);
    assert.throws(() => client.conn.sendParts([Buffer.from('y')], true), { code: 'WS_ERR_INVALID_ARGUMENT' });
  });

  test('client frames are masked with a fresh key each', () => {
    const c = recordingConnection('client');
    c.conn.send(Buffer.from('Hello'), true);
    c.conn.send(Buffer.alloc(70000, 1), false);
    c.conn.ping(Buffer.from('x'));
    const frames = c.written.flatMap((w) => decodeFrames(w));
    assert.deepEqual(frames.map((f) => [f.fin, f.opcode, f.masked]), [[true, 1, true], [true, 2, true], [true, 9, true]]);
    assert.equal(frames[0]!.payload.toString(), 'Hello');
    assert.ok(frames[1]!.payload.equals(Buffer.alloc(70000, 1)));
    assert.equal(new Set(frames.map((f) => f.key)).size, 3, 'three different keys');
    assert.equal(c.written.length, 3, 'a masked frame is one write');
  });

  test('round trip: client Connection -> server Connection and back through their write callbacks', () => {
    const s = recordingConnection('server');
    const c = recordingConnection('client');
    const pipe = () => {
      // Move bytes across until both sides are quiet.
      let moved = true;
      while (moved) {
        moved = false;
        const toServer = c.written.splice(0);
        const toClient = s.written.splice(0);
        for (const b of toServer) (moved = true), s.conn.state !== 'closed' && s.receive(b);
        for (const b of toClient) (moved = true), c.conn.state !== 'closed' && c.receive(b);
      }
    };
    const text = 'κόσμε 😀 '.repeat(20);
    c.conn.send(Buffer.from(text), true);
    c.conn.send(Buffer.alloc(65536, 0xab), false);
    c.conn.sendFragment(Buffer.from('frag'), true, false);
    c.conn.ping(Buffer.from('are you there'));
    c.conn.sendFragment(Buffer.from('ment'), true, true);
    pipe();
    const serverSaw = s.events.filter((e) => e.type !== 'write');
    assert.deepEqual(serverSaw, [
      { type: 'message', text: true, data: Buffer.from(text).toString('hex') },
      { type: 'message', text: false, data: 'ab'.repeat(65536) },
      { type: 'ping', data: Buffer.from('are you there').toString('hex') },
      { type: 'message', text: true, data: Buffer.from('fragment').toString('hex') },
    ]);
    assert.deepEqual(c.events.filter((e) => e.type === 'pong'), [{ type: 'pong', data: Buffer.from('are you there').toString('hex') }]);
    s.conn.send(Buffer.from('reply'), true);
    c.conn.close(1000, 'done');
    pipe();
    assert.deepEqual(s.events.filter((e) => e.type !== 'write').slice(4), [
      CLOSE_TRANSPORT,
      closed(1000, 'done'),
    ]);
    assert.deepEqual(c.events.filter((e) => e.type !== 'write' && e.type !== 'pong'), [
      { type: 'message', text: true, data: Buffer.from('reply').toString('hex') },
      closed(1000),
    ]);
  });

  test('send after close throws WS_ERR_CLOSED (closing and closed)', () => {
    const s = recordingConnection('server');
    s.conn.close(1000);
    const attempts = (conn: Connection) => [
      () => conn.send(Buffer.from('x'), true),
      () => conn.sendFragment(Buffer.from('x'), true, false),
      () => conn.ping(),
      () => conn.pong(),
      () => conn.sendShared(encodeShared(OP.TEXT, Buffer.alloc(0))),
    ];
    for (const attempt of attempts(s.conn)) assertThrowsCode(attempt, 'WS_ERR_CLOSED');
    s.receive(cframe({ opcode: OP.CLOSE }));
    for (const attempt of attempts(s.conn)) assertThrowsCode(attempt, 'WS_ERR_CLOSED');
    const t = recordingConnection('server');
    t.conn.transportClosed();
    for (const attempt of attempts(t.conn)) assertThrowsCode(attempt, 'WS_ERR_CLOSED');
    const u = recordingConnection('server');
    u.receive(frame({ opcode: OP.TEXT }));
    for (const attempt of attempts(u.conn)) assertThrowsCode(attempt, 'WS_ERR_CLOSED');
    assert.equal(s.written.length, 1);
  });

  test('argument checks: control payloads over 125, messages during a fragmented send, pre-encoded from a client', () => {
    const s = recordingConnection('server');
    assertThrowsCode(() => s.conn.ping(Buffer.alloc(126)), 'WS_ERR_INVALID_ARGUMENT');
    assertThrowsCode(() => s.conn.pong(Buffer.alloc(126)), 'WS_ERR_INVALID_ARGUMENT');
    s.conn.sendFragment(Buffer.from('a'), false, false);
    assertThrowsCode(() => s.conn.send(Buffer.from('b'), false), 'WS_ERR_INVALID_ARGUMENT');
    s.conn.sendFragment(Buffer.from('c'), false, true);
    s.conn.send(Buffer.from('d'), false);
    assert.deepEqual(s.take(), [write('0201 61'), write('8001 63'), write('8201 64')]);
    // A pre-encoded data frame cannot go inside an open fragmented message; a control frame can.
    s.conn.sendFragment(Buffer.from('e'), true, false);
    assertThrowsCode(() => s.conn.sendShared(encodeShared(OP.TEXT, Buffer.from('x'))), 'WS_ERR_INVALID_ARGUMENT');
    assertThrowsCode(() => s.conn.sendShared(encodeShared(OP.BINARY, Buffer.from('x'))), 'WS_ERR_INVALID_ARGUMENT');
    s.conn.sendShared(encodeShared(OP.PING, Buffer.alloc(0)));
    s.conn.sendFragment(Buffer.from('f'), true, true);
    s.conn.sendShared(encodeShared(OP.TEXT, Buffer.from('x')));
    assert.deepEqual(s.take(), [write('0101 65'), write('8900'), write('8001 66'), write('8101 78')]);
    const c = recordingConnection('client');
    assertThrowsCode(() => c.conn.sendShared(encodeShared(OP.TEXT, Buffer.alloc(0))), 'WS_ERR_INVALID_ARGUMENT');
    assert.deepEqual(c.take(), []);
  });
});

describe('connection: failures and onClose exactly once', () => {
  test('a protocol error writes a close frame with its code, closes the transport, reports the error', () => {
    const cases: [Buffer, string, number][] = [
      [frame({ opcode: OP.TEXT, payload: 'x' }), 'WS_ERR_EXPECTED_MASK', 1002],
      [cframe({ opcode: OP.TEXT, payload: 'x', rsv1: true }), 'WS_ERR_UNEXPECTED_RSV', 1002],
      [cframe({ opcode: 5 }), 'WS_ERR_INVALID_OPCODE', 1002],
      [cframe({ opcode: OP.CONT }), 'WS_ERR_UNEXPECTED_CONTINUATION', 1002],
      [cframe({ opcode: OP.PING, fin: false }), 'WS_ERR_INVALID_CONTROL_FRAME', 1002],
      [cframe({ opcode: OP.TEXT, payload: hex('c0 80') }), 'WS_ERR_INVALID_UTF8', 1007],
      [cframe({ opcode: OP.BINARY, payload: Buffer.alloc(101) }), 'WS_ERR_MESSAGE_TOO_BIG', 1009],
    ];
    for (const [bytesIn, code, closeCode] of cases) {
      const s = recordingConnection('server', 100);
      s.receive(bytesIn);
      assert.deepEqual(s.take(), [write('8802' + closeCode.toString(16).padStart(4, '0')), CLOSE_TRANSPORT, closed(closeCode, '', code, closeCode)], code);
      s.receive(cframe({ opcode: OP.TEXT, payload: 'more' }), cframe({ opcode: OP.CLOSE }));
      s.conn.transportClosed();
      assert.deepEqual(s.take(), []);
    }
    // The client's close frame is masked and it closes the transport too after a failure.
    const c = recordingConnection('client');
    c.receive(cframe({ opcode: OP.TEXT }));
    const [sent] = decodeFrames(c.written[0]!);
    assert.equal(sent!.masked, true);
    assert.equal(sent!.payload.toString('hex'), '03ea');
    assert.deepEqual(c.events.slice(1), [CLOSE_TRANSPORT, closed(1002, '', 'WS_ERR_UNEXPECTED_MASK', 1002)]);
  });

  test('transport lost -> onClose(1006) once, nothing written', () => {
    const s = recordingConnection('server');
    s.receive(cframe({ opcode: OP.TEXT, fin: false, payload: 'par' }));
    s.conn.transportClosed(new Error('ECONNRESET'));
    assert.deepEqual(s.take(), [closed(1006, '', 'WS_ERR_CONNECTION_LOST', 1006)]);
    s.receive(cframe({ opcode: OP.CONT, payload: 'tial' }), cframe({ opcode: OP.CLOSE }));
    s.conn.transportClosed();
    s.conn.fail(new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'x', 1008));
    s.conn.close(1000);
    assert.deepEqual(s.take(), []);
    assert.equal(s.conn.state, 'closed');
    // While closing too.
    const t = recordingConnection('server');
    t.conn.close(1000);
    t.take();
    t.conn.transportClosed();
    assert.deepEqual(t.take(), [closed(1006, '', 'WS_ERR_CONNECTION_LOST', 1006)]);
  });

  test('a WebSocketError given to transportClosed is reported as is (e.g. the owner\'s close timeout)', () => {
    const s = recordingConnection('client');
    s.conn.close(1000);
    s.take();
    s.conn.transportClosed(new WebSocketError('WS_ERR_CLOSE_TIMEOUT', 'close handshake not completed', 1006));
    assert.deepEqual(s.take(), [closed(1006, '', 'WS_ERR_CLOSE_TIMEOUT', 1006)]);
    const t = recordingConnection('server');
    t.conn.transportClosed(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    assert.deepEqual(t.take(), [closed(1006, '', 'WS_ERR_CONNECTION_LOST', 1006)]);
  });

  test('fail() from the owner closes with the error code once', () => {
    const s = recordingConnection('server');
    s.conn.fail(new WebSocketError('WS_ERR_MESSAGE_TOO_BIG', 'policy', 1008));
    assert.deepEqual(s.take(), [write('880203f0'), CLOSE_TRANSPORT, closed(1008, '', 'WS_ERR_MESSAGE_TOO_BIG', 1008)]);
    s.conn.fail(new WebSocketError('WS_ERR_MESSAGE_TOO_BIG', 'again', 1008));
    s.receive(cframe({ opcode: OP.CLOSE }));
    assert.deepEqual(s.take(), []);
  });

  test('closing from inside onMessage, and the rest of that chunk', () => {
    const events: string[] = [];
    const conn: Connection = new Connection(
      {
        write: (b) => events.push('write ' + b.toString('hex')),
        onMessage: (p) => {
          events.push('message ' + p.toString());
          if (p.toString() === 'stop') conn.close(1000);
        },
        onClose: (code) => events.push('close ' + code),
        closeTransport: () => events.push('closeTransport'),
      },
      { role: 'server' },
    );
    conn.receive(bytes(cframe({ opcode: OP.TEXT, payload: 'stop' }), cframe({ opcode: OP.TEXT, payload: 'then' }), cframe({ opcode: OP.CLOSE, payload: closeFrom(1000) })));
    assert.deepEqual(events, ['message stop', 'write 880203e8', 'message then', 'closeTransport', 'close 1000']);
  });
});

describe('connection: a deferred close reply (options.defer)', () => {
  function deferred(role: 'server' | 'client') {
    const tasks: (() => void)[] = [];
    const events: string[] = [];
    const conn = new Connection(
      {
        write: (b) => events.push('write ' + b.toString('hex')),
        onMessage: (p) => events.push('message ' + p.toString()),
        onPing: (p) => events.push('ping ' + p.toString()),
        onClose: (code, reason, error) => events.push(`close ${code} ${reason} ${error?.code ?? ''}`.trim()),
        closeTransport: () => events.push('closeTransport'),
      },
      { role, defer: (task) => tasks.push(task) },
    );
    const run = () => tasks.splice(0).forEach((t) => t());
    return { conn, events, tasks, run };
  }

  test('messages before the close frame can still be answered; the reply follows', () => {
    const d = deferred('server');
    d.conn.receive(bytes(cframe({ opcode: OP.TEXT, payload: 'last' }), cframe({ opcode: OP.CLOSE, payload: closeFrom(1000) }), cframe({ opcode: OP.TEXT, payload: 'ignored' })));
    assert.deepEqual(d.events, ['message last']);
    d.conn.send(Buffer.from('echo'), true);
    d.run();
    assert.deepEqual(d.events, ['message last', 'write 81046563686f', 'write 880203e8', 'closeTransport', 'close 1000']);
    d.run();
    d.conn.transportClosed();
    assert.equal(d.events.length, 5);
  });

  test('a protocol error is answered after the turn, once', () => {
    const d = deferred('server');
    d.conn.receive(bytes(cframe({ opcode: OP.TEXT, payload: 'a' }), cframe({ opcode: 4 })));
    d.conn.fail(new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'also', 1008));
    assert.deepEqual(d.events, ['message a']);
    d.run();
    assert.deepEqual(d.events, ['message a', 'write 880203ea', 'closeTransport', 'close 1002  WS_ERR_INVALID_OPCODE']);
  });

  test('the transport closing before the deferred reply runs: onClose(1006) once, nothing written', () => {
    const d = deferred('server');
    d.conn.receive(cframe({ opcode: OP.CLOSE, payload: closeFrom(1001) }));
    d.conn.transportClosed();
    d.run();
    assert.deepEqual(d.events, ['close 1006  WS_ERR_CONNECTION_LOST']);
  });

  test('the app closing inside the window: one close frame, onClose once with the peer code', () => {
    const d = deferred('client');
    d.conn.receive(frame({ opcode: OP.CLOSE, payload: closeFrom(4001, 'x') }));
    d.conn.close(1000);
    d.run();
    assert.equal(d.events.filter((e) => e.startsWith('write')).length, 1);
    assert.deepEqual(d.events.filter((e) => !e.startsWith('write')), ['close 4001 x']);
  });
});

/** The frames encoded into `output` so far, as `opcode payload fin`. */
function framedIn(output: FrameOutput): string[] {
  const tail = output.out === null ? [] : [output.out.subarray(output.start, output.end)];
  return decodeFrames(Buffer.concat([...(output.chunks ?? []), ...tail])).map((f) => `${f.opcode} ${f.payload.toString()} ${f.fin}`);
}
