import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import WebSocket, { WebSocketServer, type ServerOptions } from 'ws';
import { tlsFixture } from '../helpers/server.js';
import { runCli, runCliAsync, startCli } from './run.js';

/** A `ws` server (the peer the client is tested against) on a free port. */
interface Peer {
  url: string;
  port: number;
  /** Every upgrade request the server accepted or refused, in order. */
  requests: IncomingMessage[];
  /** The next connection the server accepts. */
  nextConnection(): Promise<WebSocket>;
  close(): Promise<void>;
}

const peers: Peer[] = [];
after(() => Promise.all(peers.map((peer) => peer.close())));

async function startPeer(options: Omit<ServerOptions, 'server' | 'port'> = {}, tls = false): Promise<Peer> {
  const server: Server = tls ? createHttpsServer(tlsFixture) : createHttpServer();
  const requests: IncomingMessage[] = [];
  const wss = new WebSocketServer({
    ...options,
    server,
    verifyClient: (info, callback) => {
      requests.push(info.req);
      if (options.verifyClient) (options.verifyClient as (i: typeof info, c: typeof callback) => void)(info, callback);
      else callback(true);
    },
  });
  const waiting: ((socket: WebSocket) => void)[] = [];
  const queued: WebSocket[] = [];
  wss.on('connection', (socket) => {
    socket.on('error', () => {});
    const waiter = waiting.shift();
    if (waiter) waiter(socket);
    else queued.push(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const peer: Peer = {
    url: `${tls ? 'wss' : 'ws'}://127.0.0.1:${port}`,
    port,
    requests,
    nextConnection: () => {
      const socket = queued.shift();
      return socket ? Promise.resolve(socket) : new Promise((resolve) => waiting.push(resolve));
    },
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  peers.push(peer);
  return peer;
}

/** An echo peer: every message goes back as it came (text stays text). */
async function startEchoPeer(options: Omit<ServerOptions, 'server' | 'port'> = {}, tls = false): Promise<Peer> {
  const peer = await startPeer(options, tls);
  const accept = (): void => {
    void peer.nextConnection().then((socket) => {
      socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
      accept();
    });
  };
  accept();
  return peer;
}

/** Messages a connection receives, as [text or hex, isBinary]. */
function collect(socket: WebSocket): [string, boolean][] {
  const received: [string, boolean][] = [];
  socket.on('message', (data: Buffer, isBinary) => received.push([isBinary ? data.toString('hex') : data.toString(), isBinary]));
  return received;
}

describe('humphrey-ws connect', () => {
  it('sends each stdin line, piped before the handshake completed, in order; prints the echoes; closes 1000; exits 0', async () => {
    // The server holds the handshake back, so every line is written before the connection is open.
    let releaseHandshake!: () => void;
    const handshakeHeld = new Promise<void>((resolve) => (releaseHandshake = resolve));
    const peer = await startPeer({ verifyClient: (_info, callback) => void handshakeHeld.then(() => callback(true)) });
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ✓`);
    const cli = startCli(['connect', peer.url]);
    cli.child.stdin.end(lines.join('\n') + '\n');
    while (peer.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    releaseHandshake();
    const server = await peer.nextConnection();
    const received = collect(server);
    server.on('message', (data, isBinary) => server.send(data, { binary: isBinary }));
    const closed = once(server, 'close') as Promise<[number, Buffer]>;
    assert.equal(await cli.exited, 0);
    assert.deepEqual(received.map(([text]) => text), lines);
    assert.equal((await closed)[0], 1000);
    assert.equal(cli.stdout().toString(), lines.join('\n') + '\n');
    assert.match(cli.stderr(), /^connected to ws:\/\/127\.0\.0\.1:\d+\/\nclosed 1000\n$/);
  });

  it('-H (repeatable), --origin and --auth set request headers; user:password in the URL is basic auth too', async () => {
    const peer = await startEchoPeer();
    const result = await runCliAsync([
      'connect', `${peer.url}/path?q=1`,
      '-H', 'X-Trace: one', '--header', 'x-trace:two', '-H', 'X-Other:  spaced value ',
      '--origin', 'https://example.test', '--auth', 'ada:secret:with:colons', '-x', 'hi',
    ]);
    assert.equal(result.status, 0, result.stderr);
    const request = peer.requests[0]!;
    assert.equal(request.url, '/path?q=1');
    assert.equal(request.headers['x-trace'], 'one, two');
    assert.equal(request.headers['x-other'], 'spaced value');
    assert.equal(request.headers.origin, 'https://example.test');
    assert.equal(request.headers.authorization, `Basic ${Buffer.from('ada:secret:with:colons').toString('base64')}`);

    const fromUrl = await runCliAsync(['connect', `ws://grace:p%40ss@127.0.0.1:${peer.port}/`, '-x', 'hi']);
    assert.equal(fromUrl.status, 0, fromUrl.stderr);
    assert.equal(peer.requests[1]!.headers.authorization, `Basic ${Buffer.from('grace:p@ss').toString('base64')}`);
  });

  it('-s offers subprotocols in order and reports the one agreed', async () => {
    let offered: string[] = [];
    const peer = await startEchoPeer({
      handleProtocols: (protocols) => {
        offered = [...protocols];
        return 'chat.v2';
      },
    });
    const result = await runCliAsync(['connect', peer.url, '-s', 'chat.v1', '--protocol', 'chat.v2', '-x', 'x']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(offered, ['chat.v1', 'chat.v2']);
    assert.match(result.stderr, /^connected to \S+ \(protocol chat\.v2\)$/m);
  });

  it('wss://: refuses an untrusted certificate, trusts it with --ca, skips the check with -k', async () => {
    const peer = await startEchoPeer({}, true);
    const untrusted = await runCliAsync(['connect', peer.url, '-x', 'x']);
    assert.equal(untrusted.status, 1);
    assert.match(untrusted.stderr, /cannot connect to wss:\/\/.*self[- ]signed|cannot connect to wss:\/\/.*certificate/i);
    const trusted = await runCliAsync(['connect', peer.url, '--ca', 'test/fixtures/tls/cert.pem', '-x', 'over tls']);
    assert.equal(trusted.status, 0, trusted.stderr);
    assert.equal(trusted.stdout, 'over tls\n');
    const insecure = await runCliAsync(['connect', peer.url.replace('127.0.0.1', 'localhost'), '-k', '-x', 'unchecked']);
    assert.equal(insecure.status, 0, insecure.stderr);
    assert.equal(insecure.stdout, 'unchecked\n');
  });

  it('-b sends stdin as one binary message and writes what arrives raw', async () => {
    const peer = await startPeer();
    const input = randomBytes(300_000); // several reads of stdin: sent as fragments of one message
    const cli = startCli(['connect', '-b', peer.url]);
    cli.child.stdin.end(input);
    const server = await peer.nextConnection();
    const received: [Buffer, boolean][] = [];
    server.on('message', (data: Buffer, isBinary) => {
      received.push([data, isBinary]);
      // Replies, text and binary, come out as their bytes with nothing between.
      server.send(Buffer.from([0, 1, 2]));
      server.send('text');
    });
    assert.equal(await cli.exited, 0);
    assert.equal(received.length, 1);
    const [data, isBinary] = received[0]!;
    assert.equal(isBinary, true);
    assert.ok(data.equals(input), 'the message is stdin, byte for byte');
    assert.deepEqual(cli.stdout(), Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from('text')]));
  });

  it('without -b, binary messages are printed as hex lines', async () => {
    const peer = await startPeer();
    const cli = startCli(['connect', peer.url]);
    const server = await peer.nextConnection();
    server.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    server.send('plain');
    server.close(1000);
    assert.equal(await cli.exited, 0);
    assert.equal(cli.stdout().toString(), 'deadbeef\nplain\n');
  });

  it('-x sends each message and waits for one reply per message; -b -x sends binary', async () => {
    const peer = await startPeer();
    const accept = async (): Promise<void> => {
      const server = await peer.nextConnection();
      // Replies come late and in two pieces, so exiting early would lose them.
      server.on('message', (data: Buffer, isBinary) => setTimeout(() => server.send(isBinary ? `binary ${data.toString('hex')}` : `re: ${data}`), 200));
      void accept();
    };
    void accept();
    const result = await runCliAsync(['connect', peer.url, '-x', 'first', '--execute', 'second']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 're: first\nre: second\n');
    const binary = await runCliAsync(['connect', peer.url, '-b', '-x', 'AB']);
    assert.equal(binary.status, 0, binary.stderr);
    assert.equal(binary.stdout, 'binary 4142');
  });

  it('-w SECONDS prints everything that arrives for that long after the last send', async () => {
    const peer = await startPeer();
    void peer.nextConnection().then((server) => {
      server.on('message', () => {
        for (let i = 1; i <= 3; i++) setTimeout(() => server.send(`tick ${i}`), i * 150);
      });
    });
    const started = Date.now();
    const result = await runCliAsync(['connect', peer.url, '-x', 'go', '-w', '1.5']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'tick 1\ntick 2\ntick 3\n');
    assert.ok(Date.now() - started >= 1500, 'it waited the whole time');
  });

  it('-w after stdin ends keeps the connection for that long', async () => {
    const peer = await startPeer();
    void peer.nextConnection().then((server) => {
      server.on('message', (data) => setTimeout(() => server.send(`late ${data}`), 300));
    });
    const result = await runCliAsync(['connect', peer.url, '--wait', '1'], 'a\n');
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'late a\n');
  });

  it('--ping-interval pings the server; --show-ping reports each ping', async () => {
    const peer = await startPeer();
    const cli = startCli(['connect', peer.url, '--ping-interval', '100', '--show-ping']);
    const server = await peer.nextConnection();
    const pings: number[] = [];
    await new Promise<void>((resolve) => server.on('ping', () => pings.push(Date.now()) === 3 && resolve()));
    await cli.waitFor(/(ping sent\n[^]*){3}/);
    server.close(1000);
    assert.equal(await cli.exited, 0);
    assert.ok(pings[2]! - pings[0]! >= 150, 'pings are spaced by the interval');
  });

  it('shows the close code and reason; a close other than 1000 exits 1', async () => {
    const peer = await startPeer();
    const cli = startCli(['connect', peer.url]);
    const server = await peer.nextConnection();
    server.close(4001, 'go away');
    assert.equal(await cli.exited, 1);
    assert.match(cli.stderr(), /^closed 4001 go away$/m);
  });

  it('--quiet prints no status lines', async () => {
    const peer = await startEchoPeer();
    const result = await runCliAsync(['connect', peer.url, '-q'], 'x\n');
    assert.equal(result.status, 0);
    assert.equal(result.stdout, 'x\n');
    assert.equal(result.stderr, '');
  });

  it('a refused handshake or a refused TCP connection exits 1 and says why', async () => {
    const peer = await startPeer({ verifyClient: (_info, callback) => callback(false, 401, 'Unauthorized') });
    const refused = await runCliAsync(['connect', peer.url], 'x\n');
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /cannot connect to ws:\/\/127\.0\.0\.1:\d+\/: .*401/);
    await peer.close();
    const nobody = await runCliAsync(['connect', peer.url], 'x\n');
    assert.equal(nobody.status, 1);
    assert.match(nobody.stderr, /cannot connect .*ECONNREFUSED/);
  });

  it('a connection lost without a close frame exits 1', async () => {
    const peer = await startPeer();
    const cli = startCli(['connect', peer.url]);
    (await peer.nextConnection()).terminate();
    assert.equal(await cli.exited, 1);
    assert.match(cli.stderr(), /connection lost \(1006\)/);
  });

  it('--max-message-size closes with 1009 when the server sends more', async () => {
    const peer = await startPeer();
    const cli = startCli(['connect', peer.url, '--max-message-size', '10']);
    const server = await peer.nextConnection();
    const closed = once(server, 'close') as Promise<[number]>;
    server.send('0123456789');
    server.send('0123456789!');
    assert.equal((await closed)[0], 1009);
    assert.equal(await cli.exited, 1);
    assert.equal(cli.stdout().toString(), '0123456789\n');
  });

  it('accepts http:// and https:// URLs as ws:// and wss://', async () => {
    const peer = await startEchoPeer();
    const result = await runCliAsync(['connect', peer.url.replace('ws:', 'http:'), '-x', 'via http']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'via http\n');
  });

  it('on a terminal: a prompt, /ping, //text, /close CODE REASON', async () => {
    const peer = await startPeer();
    const cli = startCli(['connect', peer.url], { terminal: true });
    const server = await peer.nextConnection();
    const received = collect(server);
    server.on('message', (data, isBinary) => server.send(data, { binary: isBinary }));
    const ping = once(server, 'ping') as Promise<[Buffer]>;
    const closed = once(server, 'close') as Promise<[number, Buffer]>;
    await cli.waitFor(/connected to/);
    cli.child.stdin.write('hello\r');
    await cli.waitFor(/< hello/);
    cli.child.stdin.write('/ping abc\r');
    assert.equal((await ping)[0].toString(), 'abc');
    cli.child.stdin.write('//slash\r');
    await cli.waitFor(/< \/slash/);
    cli.child.stdin.write('/close 4000 bye now\r');
    const [code, reason] = await closed;
    assert.deepEqual([code, reason.toString()], [4000, 'bye now']);
    assert.equal(await cli.exited, 0);
    assert.deepEqual(received, [['hello', false], ['/slash', false]]);
  });

  it('refuses malformed flags and URLs with exit 2', () => {
    const cases: [string[], RegExp][] = [
      [['connect'], /missing URL/],
      [['connect', 'not a url'], /is not a URL/],
      [['connect', 'ftp://x'], /URL must start with ws:\/\//],
      [['connect', 'ws://x', '-H', 'no-colon'], /-header takes NAME:VALUE/],
      [['connect', 'ws://x', '-H', 'bad name: v'], /-header takes NAME:VALUE/],
      [['connect', 'ws://x', '--auth', 'nocolon'], /--auth takes USER:PASSWORD/],
      [['connect', 'ws://x', '-w', 'soon'], /--wait must be a non-negative number/],
      [['connect', 'ws://x', '--ping-interval', '0'], /--ping-interval must be a whole number from 1/],
      [['connect', 'ws://x', '--ca', 'missing.pem'], /cannot read --ca missing\.pem/],
      [['connect', 'ws://a', 'ws://b'], /unexpected argument "ws:\/\/b"/],
    ];
    for (const [args, message] of cases) {
      const result = runCli(args);
      assert.equal(result.status, 2, args.join(' '));
      assert.match(result.stderr, message, args.join(' '));
    }
  });
});
