import { readFile } from 'node:fs/promises';
import { isIP, type Server } from 'node:net';
import { HttpAppError } from './errors.js';

/** Where to listen: a host (`undefined` for every interface) and a port (0 for any free port). */
export interface ListenAddress {
  host: string | undefined;
  port: number;
}

function parsePort(text: string, original: string): number {
  if (!/^\d{1,5}$/.test(text)) throw badAddress(original);
  const port = Number(text);
  if (port > 65535) throw badAddress(original);
  return port;
}

function badAddress(original: unknown): HttpAppError {
  return new HttpAppError(
    'HTTP_ERR_BAD_ADDRESS',
    `Cannot listen on ${JSON.stringify(original)}: expected 'host:port', '[ipv6]:port', ':port' or a port number`,
  );
}

/**
 * Parses a listen address: `'127.0.0.1:8080'`, `'localhost:0'`, `'[::1]:0'`, `':8080'` (every
 * interface), `'8080'` or `8080` (every interface). Throws an `HttpAppError`
 * `HTTP_ERR_BAD_ADDRESS` for anything else, including an IPv6 address without brackets.
 */
export function parseAddress(address: string | number): ListenAddress {
  if (typeof address === 'number') {
    if (!Number.isInteger(address) || address < 0 || address > 65535) throw badAddress(address);
    return { host: undefined, port: address };
  }
  const text = address.trim();
  if (/^\d+$/.test(text)) return { host: undefined, port: parsePort(text, address) };
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1 || text[close + 1] !== ':') throw badAddress(address);
    const host = text.slice(1, close);
    if (isIP(host) !== 6) throw badAddress(address);
    return { host, port: parsePort(text.slice(close + 2), address) };
  }
  const colon = text.lastIndexOf(':');
  if (colon === -1 || text.indexOf(':') !== colon) throw badAddress(address);
  const host = text.slice(0, colon);
  if (host !== '' && !/^[A-Za-z0-9.-]+$/.test(host)) throw badAddress(address);
  return { host: host === '' ? undefined : host, port: parsePort(text.slice(colon + 1), address) };
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
