import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketError } from '../../../src/protocol/errors.js';
import {
  acceptAsClient,
  clientOffer,
  negotiateAsServer,
  resolveDeflateConfig,
  type DeflateAgreement,
  type PerMessageDeflateOptions,
} from '../../../src/protocol/deflate/negotiate.js';

const server = (options: PerMessageDeflateOptions = {}) => resolveDeflateConfig(options, 'server', false)!;
const client = (options: PerMessageDeflateOptions = {}) => resolveDeflateConfig(options, 'client', true)!;

/** The four negotiated fields of an agreement, for compact tables. */
type Shape = [sendBits: number, sendNoTakeover: boolean, receiveBits: number, receiveNoTakeover: boolean];
const shape = (a: DeflateAgreement): Shape => [a.sendWindowBits, a.sendNoContextTakeover, a.receiveWindowBits, a.receiveNoContextTakeover];

describe('resolveDeflateConfig', () => {
  test('off, on and defaults', () => {
    assert.equal(resolveDeflateConfig(undefined, 'server', false), null);
    assert.equal(resolveDeflateConfig(false, 'client', true), null);
    const config = resolveDeflateConfig(undefined, 'client', true)!;
    assert.deepEqual(
      { ...config },
      { role: 'client', threshold: 1024, serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, memLevel: 8, level: -1, concurrency: 10 },
    );
  });

  const bad: [PerMessageDeflateOptions, 'server' | 'client'][] = [
    [{ serverMaxWindowBits: 8 }, 'server'], // a server cannot compress with 8
    [{ clientMaxWindowBits: 8 }, 'client'], // nor a client
    [{ serverMaxWindowBits: 16 }, 'client'],
    [{ clientMaxWindowBits: 7 }, 'server'],
    [{ serverMaxWindowBits: 10.5 }, 'server'],
    [{ memLevel: 0 }, 'server'],
    [{ memLevel: 10 }, 'client'],
    [{ level: 10 }, 'server'],
    [{ level: -2 }, 'server'],
    [{ concurrency: 0 }, 'server'],
    [{ threshold: -1 }, 'server'],
    [{ threshold: Number.NaN }, 'server'],
    [{ serverNoContextTakeover: 'yes' as unknown as boolean }, 'server'],
  ];
  for (const [options, role] of bad) {
    test(`refuses ${JSON.stringify(options)} on a ${role}`, () => {
      assert.throws(() => resolveDeflateConfig(options, role, true), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_ARGUMENT');
    });
  }

  test('a window of 8 is allowed for the peer', () => {
    assert.equal(resolveDeflateConfig({ clientMaxWindowBits: 8 }, 'server', false)!.clientMaxWindowBits, 8);
    assert.equal(resolveDeflateConfig({ serverMaxWindowBits: 8 }, 'client', true)!.serverMaxWindowBits, 8);
  });
});

describe('negotiateAsServer', () => {
  // [offer, server options, response (null = declined), agreement shape]
  const table: [string, PerMessageDeflateOptions, string | null, Shape | null][] = [
    ['permessage-deflate', {}, 'permessage-deflate', [15, false, 15, false]],
    ['permessage-deflate; client_max_window_bits', {}, 'permessage-deflate', [15, false, 15, false]],
    ['permessage-deflate; client_max_window_bits=10', {}, 'permessage-deflate; client_max_window_bits=10', [15, false, 10, false]],
    // The client compresses with at most 8; zlib's inflater takes 9 for it.
    ['permessage-deflate; client_max_window_bits=8', {}, 'permessage-deflate; client_max_window_bits=8', [15, false, 9, false]],
    ['permessage-deflate; server_max_window_bits=10', {}, 'permessage-deflate; server_max_window_bits=10', [10, false, 15, false]],
    ['permessage-deflate; server_max_window_bits=9', {}, 'permessage-deflate; server_max_window_bits=9', [9, false, 15, false]],
    ['permessage-deflate; server_max_window_bits="12"', {}, 'permessage-deflate; server_max_window_bits=12', [12, false, 15, false]],
    ['permessage-deflate; server_max_window_bits=15', {}, 'permessage-deflate; server_max_window_bits=15', [15, false, 15, false]],
    ['permessage-deflate; server_no_context_takeover', {}, 'permessage-deflate; server_no_context_takeover', [15, true, 15, false]],
    ['permessage-deflate; client_no_context_takeover', {}, 'permessage-deflate; client_no_context_takeover', [15, false, 15, true]],
    [
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=12',
      {},
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=12',
      [11, true, 12, true],
    ],
    // A server window of 8 cannot be honoured: that offer is declined, the next one taken.
    ['permessage-deflate; server_max_window_bits=8', {}, null, null],
    ['permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits', {}, 'permessage-deflate', [15, false, 15, false]],
    // Server policy.
    ['permessage-deflate', { serverNoContextTakeover: true }, 'permessage-deflate; server_no_context_takeover', [15, true, 15, false]],
    ['permessage-deflate', { clientNoContextTakeover: true }, 'permessage-deflate; client_no_context_takeover', [15, false, 15, true]],
    ['permessage-deflate', { serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=10', [10, false, 15, false]],
    ['permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=10', [10, false, 15, false]],
    ['permessage-deflate; server_max_window_bits=9', { serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=9', [9, false, 15, false]],
    ['permessage-deflate; server_max_window_bits=8', { serverMaxWindowBits: 9 }, null, null],
    ['permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 10 }, 'permessage-deflate; client_max_window_bits=10', [15, false, 10, false]],
    ['permessage-deflate; client_max_window_bits=12', { clientMaxWindowBits: 10 }, 'permessage-deflate; client_max_window_bits=10', [15, false, 10, false]],
    ['permessage-deflate; client_max_window_bits=9', { clientMaxWindowBits: 10 }, 'permessage-deflate; client_max_window_bits=9', [15, false, 9, false]],
    ['permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 8 }, 'permessage-deflate; client_max_window_bits=8', [15, false, 9, false]],
    // A client that did not offer client_max_window_bits cannot be told one.
    ['permessage-deflate', { clientMaxWindowBits: 10 }, 'permessage-deflate', [15, false, 15, false]],
    // Declined: malformed, unknown, repeated, valueless or out-of-range parameters.
    ['permessage-deflate; server_max_window_bits', {}, null, null],
    ['permessage-deflate; server_max_window_bits=16', {}, null, null],
    ['permessage-deflate; server_max_window_bits=7', {}, null, null],
    ['permessage-deflate; server_max_window_bits=010', {}, null, null],
    ['permessage-deflate; server_max_window_bits=1e1', {}, null, null],
    ['permessage-deflate; server_max_window_bits=-9', {}, null, null],
    ['permessage-deflate; client_max_window_bits=16', {}, null, null],
    ['permessage-deflate; client_max_window_bits=abc', {}, null, null],
    ['permessage-deflate; client_max_window_bits=""', {}, null, null],
    ['permessage-deflate; server_no_context_takeover=1', {}, null, null],
    ['permessage-deflate; client_no_context_takeover="true"', {}, null, null],
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', {}, null, null],
    ['permessage-deflate; client_max_window_bits; client_max_window_bits=10', {}, null, null],
    ['permessage-deflate; server_max_window_bits=10; Server_Max_Window_Bits=10', {}, null, null],
    ['permessage-deflate; mystery', {}, null, null],
    ['permessage-deflate; a="b', {}, null, null],
    ['permessage-deflate;', {}, null, null],
    ['x-webkit-deflate-frame', {}, null, null],
    ['', {}, null, null],
    // After declined offers, the first acceptable one wins.
    [
      'permessage-deflate; mystery, x-other, permessage-deflate; server_max_window_bits=11, permessage-deflate',
      {},
      'permessage-deflate; server_max_window_bits=11',
      [11, false, 15, false],
    ],
  ];
  for (const [offer, options, response, expected] of table) {
    test(`${JSON.stringify(offer)} with ${JSON.stringify(options)}`, () => {
      const result = negotiateAsServer(offer, server(options));
      if (response === null) {
        assert.equal(result, null);
        return;
      }
      assert.ok(result);
      assert.equal(result.response, response);
      assert.deepEqual(shape(result.agreement), expected);
      // The answer is one the client side accepts, with the mirrored agreement.
      const seen = acceptAsClient(result.response, client({ serverMaxWindowBits: 15, clientMaxWindowBits: 15 }));
      if (!/client_max_window_bits/.test(offer)) return; // clientOffer always offers it
      assert.ok(seen);
      assert.deepEqual([seen.receiveNoContextTakeover, seen.sendNoContextTakeover], [expected![1], expected![3]]);
    });
  }

  test('takes the agreement settings from the config', () => {
    const result = negotiateAsServer('permessage-deflate', server({ threshold: 10, memLevel: 4, level: 1, concurrency: 3 }))!;
    assert.deepEqual(
      [result.agreement.threshold, result.agreement.memLevel, result.agreement.level, result.agreement.concurrency],
      [10, 4, 1, 3],
    );
  });
});

describe('clientOffer', () => {
  const table: [PerMessageDeflateOptions, string][] = [
    [{}, 'permessage-deflate; client_max_window_bits'],
    [{ clientMaxWindowBits: 12 }, 'permessage-deflate; client_max_window_bits=12'],
    [{ serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=10; client_max_window_bits'],
    [{ serverMaxWindowBits: 8 }, 'permessage-deflate; server_max_window_bits=8; client_max_window_bits'],
    [
      { serverNoContextTakeover: true, clientNoContextTakeover: true },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits',
    ],
  ];
  for (const [options, offer] of table) {
    test(JSON.stringify(options), () => {
      assert.equal(clientOffer(client(options)), offer);
      // Our own server accepts every offer we make, except a server window of 8 it cannot honour.
      assert.equal(negotiateAsServer(offer, server()) !== null, !offer.includes('server_max_window_bits=8'));
    });
  }
});

describe('acceptAsClient', () => {
  // [response, client options, agreement shape]
  const accepted: [string, PerMessageDeflateOptions, Shape][] = [
    ['permessage-deflate', {}, [15, false, 15, false]],
    ['PERMESSAGE-DEFLATE', {}, [15, false, 15, false]],
    ['permessage-deflate; server_no_context_takeover', {}, [15, false, 15, true]], // allowed without being asked
    ['permessage-deflate; client_no_context_takeover', {}, [15, true, 15, false]],
    ['permessage-deflate; server_max_window_bits=10', {}, [15, false, 10, false]], // allowed without being asked
    ['permessage-deflate; server_max_window_bits=8', {}, [15, false, 9, false]],
    ['permessage-deflate; server_max_window_bits="9"', {}, [15, false, 9, false]],
    ['permessage-deflate; client_max_window_bits=10', {}, [10, false, 15, false]],
    // A client cannot compress with 8: it accepts and sends uncompressed.
    ['permessage-deflate; client_max_window_bits=8', {}, [0, false, 15, false]],
    ['permessage-deflate; server_max_window_bits=10', { serverMaxWindowBits: 10 }, [15, false, 10, false]],
    ['permessage-deflate; server_max_window_bits=9', { serverMaxWindowBits: 10 }, [15, false, 9, false]],
    // The server ignored a requested limit: its window is 15, which the inflater handles.
    ['permessage-deflate', { serverMaxWindowBits: 10 }, [15, false, 15, false]],
    ['permessage-deflate', { serverNoContextTakeover: true }, [15, false, 15, false]],
    ['permessage-deflate; client_max_window_bits=11', { clientMaxWindowBits: 12 }, [11, false, 15, false]],
    ['permessage-deflate', { clientMaxWindowBits: 12 }, [12, false, 15, false]],
    ['permessage-deflate', { clientNoContextTakeover: true }, [15, true, 15, false]],
    [
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11',
      {},
      [11, true, 12, true],
    ],
  ];
  for (const [response, options, expected] of accepted) {
    test(`accepts ${JSON.stringify(response)} for ${JSON.stringify(options)}`, () => {
      const agreement = acceptAsClient(response, client(options));
      assert.ok(agreement);
      assert.deepEqual(shape(agreement), expected);
    });
  }

  test('no header: declined', () => {
    assert.equal(acceptAsClient(undefined, client()), null);
    assert.equal(acceptAsClient('', client()), null);
    assert.equal(acceptAsClient(' , ', client()), null);
    assert.equal(acceptAsClient(undefined, null), null);
  });

  const failed: [string, PerMessageDeflateOptions | null, RegExp][] = [
    ['permessage-deflate', null, /not offered/],
    ['x-webkit-deflate-frame', {}, /not offered/],
    ['permessage-deflate, permessage-deflate', {}, /more than one/],
    ['permessage-deflate; mystery', {}, /unknown parameter/],
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', {}, /more than once/],
    ['permessage-deflate; server_no_context_takeover=1', {}, /must not have a value/],
    ['permessage-deflate; client_no_context_takeover="x"', {}, /must not have a value/],
    ['permessage-deflate; server_max_window_bits', {}, /server_max_window_bits must be 8-15/],
    ['permessage-deflate; server_max_window_bits=7', {}, /server_max_window_bits must be 8-15/],
    ['permessage-deflate; server_max_window_bits=16', {}, /server_max_window_bits must be 8-15/],
    ['permessage-deflate; server_max_window_bits=09', {}, /server_max_window_bits must be 8-15/],
    ['permessage-deflate; server_max_window_bits=11', { serverMaxWindowBits: 10 }, /larger than offered/],
    // In a response client_max_window_bits needs a value.
    ['permessage-deflate; client_max_window_bits', {}, /client_max_window_bits must be 8-15/],
    ['permessage-deflate; client_max_window_bits=16', {}, /client_max_window_bits must be 8-15/],
    ['permessage-deflate; client_max_window_bits=13', { clientMaxWindowBits: 12 }, /larger than offered/],
    ['permessage-deflate; a=', {}, /malformed/],
    ['permessage-deflate;;', {}, /malformed/],
  ];
  for (const [response, options, why] of failed) {
    test(`fails on ${JSON.stringify(response)} for ${JSON.stringify(options)}`, () => {
      assert.throws(
        () => acceptAsClient(response, options === null ? null : client(options)),
        (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_HANDSHAKE' && why.test(error.message),
      );
    });
  }
});
