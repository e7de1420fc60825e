import { readFile } from 'node:fs/promises';
import { isIP, type Server } from 'node:net';

/** Where to listen: a host (`undefined` for every interface) and a port (0 for any free port). */
export interface ListenAddress {
  host: string | undefined;
  port: number;
}

/** The forms `parseListenAddress` accepts, for error messages. */
export const ADDRESS_FORMS = "'host:port', '[ipv6]:port', ':port' or a port number";

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port > 65535 ? undefined : port;
}

/**
 * Parses a listen address: `'127.0.0.1:8080'`, `'localhost:0'`, `'[::1]:0'`, `':8080'` (every
 * interface), `'8080'` or `8080` (every interface). Returns `undefined` for anything else,
 * including an IPv6 address without brackets; each caller raises its own typed error.
 */
export function parseListenAddress(address: string | number): ListenAddress | undefined {
  if (typeof address === 'number') {
    if (!Number.isInteger(address) || address < 0 || address > 65535) return undefined;
    return { host: undefined, port: address };
  }
  if (typeof address !== 'string') return undefined;
  const text = address.trim();
  if (/^\d+$/.test(text)) {
    const port = parsePort(text);
    return port === undefined ? undefined : { host: undefined, port };
  }
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1 || text[close + 1] !== ':') return undefined;
    host = text.slice(1, close);
    if (isIP(host) !== 6) return undefined;
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1 || text.indexOf(':') !== colon) return undefined;
    host = text.slice(0, colon);
    if (host !== '' && !/^[A-Za-z0-9.-]+$/.test(host)) return undefined;
    portText = text.slice(colon + 1);
  }
  const port = parsePort(portText);
  if (port === undefined) return undefined;
  return { host: host === '' ? undefined : host, port };
}

/**
 * The host to put in a URL for a bound address: an unspecified address (`0.0.0.0`, `::`) is
 * replaced by the loopback address of the same family, and IPv6 gets brackets.
 */
export function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** `host:port` of a peer, with IPv6 hosts in brackets (`'unknown'` once the socket is gone). */
export function formatAddress(host: string | undefined, port: number | undefined): string {
  if (host === undefined) return 'unknown';
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Start `server` listening and resolve once it is (reject with the listen error). */
export function listen(server: Server, { host, port }: ListenAddress): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Read a certificate and key (PEM files) for a TLS server. */
export async function readCertificate(paths: { cert: string; key: string }): Promise<{ cert: Buffer; key: Buffer }> {
  const [cert, key] = await Promise.all([readFile(paths.cert), readFile(paths.key)]);
  return { cert, key };
}
