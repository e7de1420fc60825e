// Category 7: close handling (RFC 6455 5.5.1, 7). The server answers a close frame with a close
// frame echoing the code, processes nothing after the close frame it received, sends nothing
// after the close frame it sent, and then closes the TCP connection itself. Close payloads are
// empty or a valid code plus a UTF-8 reason, within the 125-byte control frame limit.

import { describe, it } from 'node:test';
import { OP, WAIT_MS, text, binary, cont, ping, close, encodeFrame, describeEvent, withClient } from './raw-client.js';
import { useTarget, opts, b, fromHex, utf8Text } from './harness.js';

describe('7 close handling', () => {
  const target = useTarget();

  // ---- 7.1: what follows a close frame is ignored -------------------------------------------
  it('7.1.1 text message and close in one write -> echo, then close 1000 and TCP close', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text('Hello World!'), close(1000)]);
      await c.expectMessage(OP.TEXT, 'Hello World!');
      await c.expectClose([1000]);
      await c.expectTcpClose();
    }),
  );
  it('7.1.2 two close frames in one write -> exactly one close back, then TCP close', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([close(1000), close(1001)]);
      await c.expectClose([1000]);
      await c.expectTcpClose();
    }),
  );
  it('7.1.3 close, then ping (one write) -> close back, no pong', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([close(1000), ping('must not be answered')]);
      await c.expectClose([1000]);
      await c.expectTcpClose();
    }),
  );
  it('7.1.4 close, then text (one write) -> close back, no echo', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([close(1000), text('must not be echoed')]);
      await c.expectClose([1000]);
      await c.expectTcpClose();
    }),
  );
  it('7.1.5 text fragment, close, final fragment -> close back, no echo', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text('fragment1', { fin: false }), close(1000), cont('fragment2')]);
      await c.expectClose([1000]);
      await c.expectTcpClose();
    }),
  );
  it('7.1.6 256 KiB text, close, ping (one write) -> echo, close back, no pong', opts(), () =>
    withClient(target(), async (c) => {
      const big = utf8Text(256 * 1024);
      await c.send([text(big), close(1000), ping('late')]);
      await c.expectMessage(OP.TEXT, big);
      await c.expectClose([1000]);
      await c.expectTcpClose();
    }),
  );
  it('7.1.7 text sent after the server\'s close reply arrived -> no echo, TCP closed', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(close(1000));
      await c.expectClose([1000]);
      await c.send([text('too late'), ping('too late')]);
      await c.expectTcpClose();
    }),
  );

  it('7.1.8 text message, its echo, then close -> close 1000 and TCP close', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(text('Hello World!'));
      await c.expectMessage(OP.TEXT, 'Hello World!');
      await c.closeHandshake(1000);
    }),
  );

  // ---- 7.2: who closes TCP ---------------------------------------------------------------------
  it('7.2.1 after the closing handshake the server closes TCP (client keeps its side open)', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(close(1000, 'bye'));
      await c.expectClose([1000]);
      await c.expectTcpClose(1000);
    }),
  );
  it('7.2.2 close frame followed by a TCP half-close from the client -> close back, TCP close', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(close(1000));
      c.socket.end();
      await c.expectClose([1000]);
      await c.expectTcpClose();
    }),
  );
  it('7.2.3 client drops TCP mid-message -> the server keeps serving other connections', opts(), () =>
    withClient(target(), async (c) => {
      const frame = text(utf8Text(1000));
      await c.send(frame.subarray(0, 500));
      c.destroy();
      await withClient(target(), async (d) => {
        await d.send(text('still alive'));
        await d.expectMessage(OP.TEXT, 'still alive');
        await d.closeHandshake();
      });
    }),
  );

  it('7.2.4 client half-closes TCP without a close frame -> the server closes TCP (a close frame is optional)', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(text('echo me'));
      await c.expectMessage(OP.TEXT, 'echo me');
      c.socket.end();
      const e = await c.next(WAIT_MS, 'the server to close TCP');
      if (e.type === 'close') await c.expectTcpClose();
      else if (e.type !== 'tcp-close') throw c.failure(`expected the server to close TCP, got ${describeEvent(e)}`);
    }),
  );
  it('7.2.5 client half-closes TCP in the middle of a frame -> the server closes TCP (a close frame is optional)', opts(), () =>
    withClient(target(), async (c) => {
      const frame = binary(Buffer.alloc(1000, 7));
      await c.send(frame.subarray(0, 100));
      c.socket.end();
      const e = await c.next(WAIT_MS, 'the server to close TCP');
      if (e.type === 'close') await c.expectTcpClose();
      else if (e.type !== 'tcp-close') throw c.failure(`expected the server to close TCP, got ${describeEvent(e)}`);
    }),
  );

  // ---- 7.3: close payload shapes ------------------------------------------------------------
  it('7.3.1 close with an empty payload -> close with an empty payload (or 1000)', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(close());
      await c.expectClose([null, 1000]);
      await c.expectTcpClose();
    }),
  );
  it('7.3.2 close with a 1-byte payload -> 1002', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(encodeFrame({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) }));
      await c.expectFail([1002]);
    }),
  );
  it('7.3.3 close 1000 without reason -> close 1000', opts(), () =>
    withClient(target(), async (c) => {
      await c.closeHandshake(1000);
    }),
  );
  it('7.3.4 close 1000 with reason "Hello World!" -> close 1000', opts(), () =>
    withClient(target(), async (c) => {
      await c.closeHandshake(1000, 'Hello World!');
    }),
  );
  it('7.3.5 close 1000 with a 123-byte reason (125-byte payload) -> close 1000', opts(), () =>
    withClient(target(), async (c) => {
      await c.closeHandshake(1000, 'x'.repeat(123));
    }),
  );
  it('7.3.6 close 1000 with a 124-byte reason (126-byte payload) -> 1002', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(close(1000, 'x'.repeat(124)));
      await c.expectFail([1002]);
    }),
  );
  it('7.3.7 close 1000 with reason, chopped into 1-byte writes -> close 1000', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(close(1000, 'chopped'), { chunks: 'bytes' });
      await c.expectClose([1000]);
      await c.expectTcpClose();
    }),
  );
  it('7.3.8 close 1000 with a 123-byte reason of multibyte characters -> close 1000', opts(), () =>
    withClient(target(), async (c) => {
      const reason = utf8Text(123);
      await c.closeHandshake(1000, reason);
    }),
  );

  // ---- 7.5: reason encoding --------------------------------------------------------------------
  it('7.5.1 close reason with invalid UTF-8 ("κόσμε" + ED A0 80 + "edited") -> 1007', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(close(1000, b(fromHex('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80'), 'edited')));
      await c.expectFail([1007]);
    }),
  );
  it('7.5.2 close reason ending in a truncated character (E2 82) -> 1007', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(close(1000, b('bye ', fromHex('e2 82'))));
      await c.expectFail([1007]);
    }),
  );
  it('7.5.3 close reason with an overlong encoding (C0 AF) -> 1007', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(close(1001, fromHex('c0 af')));
      await c.expectFail([1007]);
    }),
  );
  it('7.5.4 close reason with valid 4-byte characters -> close echoed', opts(), () =>
    withClient(target(), async (c) => {
      await c.closeHandshake(1000, fromHex('f0 9f 98 80 f4 8f bf bf'));
    }),
  );

  // ---- 7.7: valid close codes are echoed --------------------------------------------------------
  let n = 0;
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
    it(`7.7.${++n} close with valid code ${code} -> close ${code} echoed, TCP close`, opts(), () =>
      withClient(target(), async (c) => {
        await c.closeHandshake(code, `code ${code}`);
      }),
    );
  }

  // ---- 7.9: codes that may not appear on the wire -------------------------------------------
  n = 0;
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    it(`7.9.${++n} close with invalid code ${code} -> 1002`, opts(), () =>
      withClient(target(), async (c) => {
        await c.send(close(code));
        await c.expectFail([1002]);
      }),
    );
  }
});
