// Category 6: UTF-8 handling (RFC 6455 5.6, 8.1; RFC 3629). Valid text is echoed whatever the
// fragmentation; invalid text (overlong forms, surrogates, code points above U+10FFFF, stray or
// missing continuation bytes, bytes that never occur) fails the connection with 1007, and it
// does so as soon as the invalid bytes arrive (Autobahn 6.4.x "fail fast"), not only once the
// message or frame is complete.

import { describe, it } from 'node:test';
import { OP, encodeFrame, text, cont, fragments, withClient, type RawClient } from './raw-client.js';
import { useTarget, opts, b, fromHex } from './harness.js';

const KOSME = fromHex('ce ba e1 bd b9 cf 83 ce bc ce b5'); // "κόσμε"

const WS_NO_FAIL_FAST =
  'ws validates UTF-8 only once a message is complete, so it does not fail fast on a partial message';

describe('6 UTF-8 handling', () => {
  const target = useTarget();

  // ---- 6.1-6.2: valid text ---------------------------------------------------------------------
  const valid: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['ASCII', Buffer.from('Hello, world!')],
    ['mixed Latin-1 "Hello-µ@ßöäüàá-UTF-8!!"', Buffer.from('Hello-µ@ßöäüàá-UTF-8!!', 'utf8')],
    ['Greek "κόσμε" (2- and 3-byte)', KOSME],
    ['U+0000 NUL', fromHex('00')],
    ['U+007F (last 1-byte)', fromHex('7f')],
    ['U+0080 (first 2-byte)', fromHex('c2 80')],
    ['U+07FF (last 2-byte)', fromHex('df bf')],
    ['U+0800 (first 3-byte)', fromHex('e0 a0 80')],
    ['U+D7FF (last before surrogates)', fromHex('ed 9f bf')],
    ['U+E000 (first after surrogates)', fromHex('ee 80 80')],
    ['U+FEFF (byte order mark)', fromHex('ef bb bf')],
    ['U+FFFD (replacement character)', fromHex('ef bf bd')],
    ['U+FFFE (noncharacter, still valid UTF-8)', fromHex('ef bf be')],
    ['U+FFFF (last 3-byte, noncharacter)', fromHex('ef bf bf')],
    ['U+FDD0 (noncharacter)', fromHex('ef b7 90')],
    ['U+10000 (first 4-byte)', fromHex('f0 90 80 80')],
    ['U+1F600 (emoji)', fromHex('f0 9f 98 80')],
    ['U+10FFFF (last code point)', fromHex('f4 8f bf bf')],
    ['all boundary code points in one message', b('a', fromHex('7f c2 80 df bf e0 a0 80 ef bf bf f0 90 80 80 f4 8f bf bf ef bb bf'), 'z')],
  ];

  let n = 0;
  for (const [name, bytes] of valid) {
    it(`6.1.${++n} valid ${name}: one frame -> echoed`, opts(), () =>
      withClient(target(), async (c) => {
        await c.send(text(bytes));
        await c.expectMessage(OP.TEXT, bytes);
        await c.closeHandshake();
      }),
    );
  }

  // Every split position of a message that surrounds the character with ASCII, so that each
  // boundary inside the multibyte sequence is exercised, as two fragments.
  n = 0;
  for (const [name, bytes] of valid.slice(3)) {
    const msg = b('<', bytes, '>');
    it(`6.2.${++n} valid ${name}: split into 2 fragments at every byte position -> echoed each time`, opts(), () =>
      withClient(target(), async (c) => {
        for (let at = 0; at <= msg.length; at++) {
          await c.send(fragments(OP.TEXT, msg, [at]));
          await c.expectMessage(OP.TEXT, msg);
        }
        await c.closeHandshake();
      }),
    );
  }

  const longValid = b(Buffer.from('Hello-µ@ßöäüàá-UTF-8!! '), KOSME, fromHex('f0 9f 98 80 e0 a0 80 f4 8f bf bf'));
  it(`6.2.${++n} valid mixed text in 1-byte fragments -> echoed`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send(fragments(OP.TEXT, longValid, Array(longValid.length - 1).fill(1)));
      await c.expectMessage(OP.TEXT, longValid);
      await c.closeHandshake();
    }),
  );
  it(`6.2.${++n} valid mixed text, one frame chopped into 1-byte writes -> echoed`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send(text(longValid), { chunks: 'bytes' });
      await c.expectMessage(OP.TEXT, longValid);
      await c.closeHandshake();
    }),
  );
  it(`6.2.${++n} valid text in 3 fragments whose boundaries split two different characters`, opts(), () =>
    withClient(target(), async (c) => {
      const msg = b(fromHex('f0 9f 98 80'), fromHex('e2 82 ac'));
      await c.send(fragments(OP.TEXT, msg, [2, 3]));
      await c.expectMessage(OP.TEXT, msg);
      await c.closeHandshake();
    }),
  );

  // ---- 6.3: invalid text -------------------------------------------------------------------------
  const invalid: [string, Buffer][] = [
    ['"κόσμε" + surrogate U+D800 + "edited"', b(KOSME, fromHex('ed a0 80'), 'edited')],
    // Overlong encodings.
    ['overlong U+0000 (C0 80)', fromHex('c0 80')],
    ['overlong U+0000 (E0 80 80)', fromHex('e0 80 80')],
    ['overlong U+0000 (F0 80 80 80)', fromHex('f0 80 80 80')],
    ['overlong "/" (C0 AF)', fromHex('c0 af')],
    ['overlong "/" (E0 80 AF)', fromHex('e0 80 af')],
    ['overlong "/" (F0 80 80 AF)', fromHex('f0 80 80 af')],
    ['maximum overlong 2-byte (C1 BF)', fromHex('c1 bf')],
    ['maximum overlong 3-byte (E0 9F BF)', fromHex('e0 9f bf')],
    ['maximum overlong 4-byte (F0 8F BF BF)', fromHex('f0 8f bf bf')],
    // Surrogates.
    ['surrogate U+D800 (ED A0 80)', fromHex('ed a0 80')],
    ['surrogate U+DB7F (ED AD BF)', fromHex('ed ad bf')],
    ['surrogate U+DB80 (ED AE 80)', fromHex('ed ae 80')],
    ['surrogate U+DBFF (ED AF BF)', fromHex('ed af bf')],
    ['surrogate U+DC00 (ED B0 80)', fromHex('ed b0 80')],
    ['surrogate U+DF80 (ED BE 80)', fromHex('ed be 80')],
    ['surrogate U+DFFF (ED BF BF)', fromHex('ed bf bf')],
    ['surrogate pair U+D800 U+DC00 encoded separately (CESU-8)', fromHex('ed a0 80 ed b0 80')],
    ['surrogate pair U+DBFF U+DFFF encoded separately', fromHex('ed af bf ed bf bf')],
    // Beyond U+10FFFF and old 5/6-byte forms.
    ['U+110000 (F4 90 80 80)', fromHex('f4 90 80 80')],
    ['U+1FFFFF (F7 BF BF BF)', fromHex('f7 bf bf bf')],
    ['lead byte F5', fromHex('f5 80 80 80')],
    ['5-byte sequence (F8 88 80 80 80)', fromHex('f8 88 80 80 80')],
    ['6-byte sequence (FC 84 80 80 80 80)', fromHex('fc 84 80 80 80 80')],
    ['last 5-byte form (FB BF BF BF BF)', fromHex('fb bf bf bf bf')],
    ['last 6-byte form (FD BF BF BF BF BF)', fromHex('fd bf bf bf bf bf')],
    // Bytes that never appear.
    ['byte FE', fromHex('fe')],
    ['byte FF', fromHex('ff')],
    ['bytes FE FE FF FF', fromHex('fe fe ff ff')],
    // Stray continuation bytes.
    ['lone continuation byte 80', fromHex('80')],
    ['lone continuation byte BF', fromHex('bf')],
    ['continuation bytes 80 BF 80', fromHex('80 bf 80')],
    ['continuation byte after a complete character', b('a', fromHex('c2 80 80'), 'b')],
    ['all 64 continuation bytes 80..BF', Buffer.from(Array.from({ length: 64 }, (_, i) => 0x80 + i))],
    // Lead bytes not followed by continuations.
    ['lead byte C2 followed by a space', fromHex('c2 20')],
    ['lead byte E1 followed by a space', fromHex('e1 20')],
    ['lead byte F1 followed by a space', fromHex('f1 20')],
    ['3-byte sequence cut short by ASCII (E2 82 41)', fromHex('e2 82 41')],
    // Truncated at the end of the message.
    ['truncated 2-byte at message end (C2)', b('abc', fromHex('c2'))],
    ['truncated 3-byte at message end (E2 82)', b('abc', fromHex('e2 82'))],
    ['truncated 4-byte at message end (F0 9F 98)', b('abc', fromHex('f0 9f 98'))],
    ['truncated U+10FFFF at message end (F4 8F BF)', fromHex('f4 8f bf')],
    ['concatenation of truncated sequences', fromHex('c2 e0 a0 f0 90 80 df ef bf f4 8f bf')],
  ];

  n = 0;
  for (const [name, bytes] of invalid) {
    it(`6.3.${++n} invalid: ${name}, one frame -> 1007`, opts(), () =>
      withClient(target(), async (c) => {
        await c.send(text(bytes));
        await c.expectFail([1007]);
      }),
    );
  }

  n = 0;
  for (const [name, bytes] of invalid.filter((_, i) => i % 3 === 0 || i === 1)) {
    it(`6.4.${++n} invalid: ${name}, in 1-byte fragments after a valid fragment -> 1007`, opts(), () =>
      withClient(target(), async (c) => {
        const msg = b(KOSME, bytes, 'tail');
        await c.send(fragments(OP.TEXT, msg, Array(msg.length - 1).fill(1)));
        await c.expectFail([1007]);
      }),
    );
  }

  n = 0;
  it(`6.5.${++n} valid first fragment, invalid sequence in the final fragment -> 1007`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text(KOSME, { fin: false }), cont(b('ok', fromHex('ed a0 80'), 'more'))]);
      await c.expectFail([1007]);
    }),
  );
  it(`6.5.${++n} valid first two fragments, lone continuation byte in the third -> 1007`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text('abc', { fin: false }), cont(KOSME, { fin: false }), cont(fromHex('80'))]);
      await c.expectFail([1007]);
    }),
  );
  it(`6.5.${++n} surrogate split across fragments (ED | A0 80) -> 1007`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text(b('abc', fromHex('ed')), { fin: false }), cont(fromHex('a0 80'))]);
      await c.expectFail([1007]);
    }),
  );
  it(`6.5.${++n} message ends inside a character split across fragments (E2 | 82) -> 1007`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text(b('abc', fromHex('e2')), { fin: false }), cont(fromHex('82'))]);
      await c.expectFail([1007]);
    }),
  );
  it(`6.5.${++n} final empty fragment after a truncated character -> 1007`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text(b('abc', fromHex('f0 9f 98')), { fin: false }), cont('')]);
      await c.expectFail([1007]);
    }),
  );
  it(`6.5.${++n} valid message echoed, then an invalid one on the same connection -> echo, 1007`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text(KOSME), text(fromHex('c0 80'))]);
      await c.expectMessage(OP.TEXT, KOSME);
      await c.expectFail([1007]);
    }),
  );
  it(`6.5.${++n} invalid UTF-8 in a binary message is not checked -> echoed`, opts(), () =>
    withClient(target(), async (c) => {
      const bytes = fromHex('c0 80 ed a0 80 f4 90 80 80 ff fe');
      await c.send(encodeFrame({ opcode: OP.BINARY, payload: bytes }));
      await c.expectMessage(OP.BINARY, bytes);
      await c.closeHandshake();
    }),
  );

  // ---- 6.6: fail fast ----------------------------------------------------------------------------
  // The server must fail the connection once the invalid bytes are in, without waiting for the
  // rest of the message (or of the frame). Nothing more is sent until the close arrives.
  const failFast = async (c: RawClient, parts: Buffer[]) => {
    for (const part of parts) {
      await c.send(part);
      await new Promise((r) => setTimeout(r, 20));
    }
    await c.expectFail([1007], { timeoutMs: 1500 });
  };

  n = 0;
  it(`6.6.${++n} first fragment (no FIN) "CE BA E1 BD B9 CF 83 ED A0 80" + more -> 1007 before the final fragment`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      await failFast(c, [text(b(fromHex('ce ba e1 bd b9 cf 83 ed a0 80'), 'more text'), { fin: false })]);
    }),
  );
  it(`6.6.${++n} (Autobahn 6.4.1) fragments "κόσμε", "F4 90 80 80" (no FIN) -> 1007 before the final fragment`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      await failFast(c, [text(KOSME, { fin: false }), cont(fromHex('f4 90 80 80'), { fin: false })]);
    }),
  );
  it(`6.6.${++n} (Autobahn 6.4.2) fragments "κόσμε F4", "90 80 80" (no FIN) -> 1007 before the final fragment`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      await failFast(c, [text(b(KOSME, fromHex('f4')), { fin: false }), cont(fromHex('90 80 80'), { fin: false })]);
    }),
  );

  // Single frame, FIN set, delivered in pieces; the rest of the payload is never sent.
  const partialFrame = (payload: Buffer, cuts: number[]) => {
    const frame = text(payload);
    const headerLen = frame.length - payload.length;
    const parts: Buffer[] = [];
    let from = 0;
    for (const cut of cuts) {
      parts.push(frame.subarray(from, headerLen + cut));
      from = headerLen + cut;
    }
    return parts;
  };
  const edited = b(KOSME, fromHex('f4 90 80 80'), 'edited');
  it(`6.6.${++n} (Autobahn 6.4.3) one frame: "κόσμε", then "F4 90 80 80", payload unfinished -> 1007 before the rest`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      await failFast(c, partialFrame(edited, [KOSME.length, KOSME.length + 4]));
    }),
  );
  it(`6.6.${++n} (Autobahn 6.4.4) one frame: "κόσμε", then "F4", then "90", payload unfinished -> 1007 before the rest`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      await failFast(c, partialFrame(edited, [KOSME.length, KOSME.length + 1, KOSME.length + 2]));
    }),
  );
  it(`6.6.${++n} one 1000-byte frame starting with C0 80, first 16 bytes sent one by one -> 1007 before the rest`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      const payload = b(fromHex('c0 80'), Buffer.alloc(998, 0x61));
      const frame = text(payload);
      const headerLen = frame.length - payload.length;
      await c.send(frame.subarray(0, headerLen + 16), { chunks: 'bytes' });
      await c.expectFail([1007], { timeoutMs: 1500 });
    }),
  );
  it(`6.6.${++n} one 64 KiB frame with a surrogate at offset 100, first 4 KiB sent -> 1007 before the rest`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      const payload = Buffer.alloc(65536, 0x61);
      fromHex('ed a0 80').copy(payload, 100);
      const frame = text(payload);
      const headerLen = frame.length - payload.length;
      await c.send(frame.subarray(0, headerLen + 4096), { chunks: 512 });
      await c.expectFail([1007], { timeoutMs: 1500 });
    }),
  );
  it(`6.6.${++n} first fragment (no FIN) ending in "ED A0" (a surrogate is certain at its 2nd byte) -> 1007 before the rest`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      await failFast(c, [text(b('abc', fromHex('ed a0')), { fin: false })]);
    }),
  );
  it(`6.6.${++n} first fragment (no FIN) ending in "E0 80" (overlong at its 2nd byte) -> 1007 before the rest`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      await failFast(c, [text(b('abc', fromHex('e0 80')), { fin: false })]);
    }),
  );
  it(`6.6.${++n} first fragment (no FIN) ending in "F0 8F" (overlong 4-byte at its 2nd byte) -> 1007 before the rest`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      await failFast(c, [text(b('abc', fromHex('f0 8f')), { fin: false })]);
    }),
  );
  it(`6.6.${++n} a fragment (no FIN) ending in an incomplete but valid prefix is not failed early`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send(text(b(KOSME, fromHex('f0 9f')), { fin: false }));
      await c.expectSilence(200);
      await c.send(cont(fromHex('98 80')));
      await c.expectMessage(OP.TEXT, b(KOSME, fromHex('f0 9f 98 80')));
      await c.closeHandshake();
    }),
  );
  it(`6.6.${++n} fragmented 1-byte frames: "κόσμε" then FF, no FIN -> 1007 before the final fragment`, opts(5000, { ws: WS_NO_FAIL_FAST }), () =>
    withClient(target(), async (c) => {
      const msg = b(KOSME, fromHex('ff'));
      const frames = fragments(OP.TEXT, b(msg, 'x'), Array(msg.length).fill(1));
      await failFast(c, [Buffer.concat(frames.slice(0, msg.length))]);
    }),
  );
});
