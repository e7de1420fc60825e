import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatExtension, isToken, parseExtensions } from '../../../src/protocol/deflate/extensions.js';

const p = (name: string, value: string | true = true) => ({ name, value });

describe('parseExtensions', () => {
  const table: [string, ReturnType<typeof parseExtensions>][] = [
    ['', []],
    ['permessage-deflate', [{ name: 'permessage-deflate', params: [] }]],
    ['  permessage-deflate  ', [{ name: 'permessage-deflate', params: [] }]],
    ['Permessage-Deflate; Client_Max_Window_Bits', [{ name: 'permessage-deflate', params: [p('client_max_window_bits')] }]],
    [
      'permessage-deflate; client_no_context_takeover; server_max_window_bits=10',
      [{ name: 'permessage-deflate', params: [p('client_no_context_takeover'), p('server_max_window_bits', '10')] }],
    ],
    ['permessage-deflate;server_max_window_bits="10"', [{ name: 'permessage-deflate', params: [p('server_max_window_bits', '10')] }]],
    ['permessage-deflate; server_max_window_bits = 10 ', [{ name: 'permessage-deflate', params: [p('server_max_window_bits', '10')] }]],
    // A quoted-pair unescapes to its character.
    ['permessage-deflate; server_max_window_bits="1\\0"', [{ name: 'permessage-deflate', params: [p('server_max_window_bits', '10')] }]],
    [
      'permessage-deflate; server_max_window_bits=10, permessage-deflate',
      [{ name: 'permessage-deflate', params: [p('server_max_window_bits', '10')] }, { name: 'permessage-deflate', params: [] }],
    ],
    // Empty list elements are ignored (RFC 7230 section 7).
    [', ,permessage-deflate,,', [{ name: 'permessage-deflate', params: [] }]],
    ['x-webkit-deflate-frame, permessage-deflate', [{ name: 'x-webkit-deflate-frame', params: [] }, { name: 'permessage-deflate', params: [] }]],
    // Malformed elements are null in place; the next element is still read.
    ['permessage-deflate; , permessage-deflate', [null, { name: 'permessage-deflate', params: [] }]],
    ['permessage-deflate; a=, b', [null, { name: 'b', params: [] }]],
    ['permessage-deflate a', [null]],
    ['permessage-deflate; a="x y", b', [null, { name: 'b', params: [] }]], // quoted value not a token
    ['permessage-deflate; a="unterminated, b', [null]],
    ['permessage-deflate; a="x,y"z, b', [null, { name: 'b', params: [] }]], // the comma in quotes does not split
    ['=x, permessage-deflate', [null, { name: 'permessage-deflate', params: [] }]],
    ['permessage-deflate; a=b=c', [null]],
    ['permessage-deflate; a="\u0001"', [null]],
    ['permessage-deflate;;a', [null]],
  ];
  for (const [header, expected] of table) {
    test(JSON.stringify(header), () => assert.deepEqual(parseExtensions(header), expected));
  }

  test('several header lines form one list', () => {
    assert.deepEqual(parseExtensions(['a; x=1', 'b']), [{ name: 'a', params: [p('x', '1')] }, { name: 'b', params: [] }]);
  });

  test('absent header', () => assert.deepEqual(parseExtensions(undefined), []));

  test('never throws on any byte soup', () => {
    const alphabet = 'ab;=,"\\ \t\x01\x7f\u00e9';
    for (let seed = 1; seed < 3000; seed++) {
      let text = '';
      let x = seed;
      for (let i = 0; i < 12; i++) {
        x = (x * 1103515245 + 12345) & 0x7fffffff;
        text += alphabet[x % alphabet.length];
      }
      const parsed = parseExtensions(text);
      assert.ok(Array.isArray(parsed));
    }
  });
});

describe('formatExtension', () => {
  test('round trip', () => {
    const element = { name: 'permessage-deflate', params: [p('server_no_context_takeover'), p('client_max_window_bits', '10')] };
    const text = formatExtension(element);
    assert.equal(text, 'permessage-deflate; server_no_context_takeover; client_max_window_bits=10');
    assert.deepEqual(parseExtensions(text), [element]);
  });
});

test('isToken', () => {
  assert.equal(isToken('permessage-deflate'), true);
  assert.equal(isToken(''), false);
  assert.equal(isToken('a b'), false);
  assert.equal(isToken('a"'), false);
});
