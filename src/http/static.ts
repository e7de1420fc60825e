import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import type { HttpRequest } from './request.js';
import { HttpResponse } from './response.js';

/** A route handler that needs no app state (usable with `withRoute` and `withStatelessRoute`). */
export type StaticHandler = (request: HttpRequest) => Promise<HttpResponse>;

/** Options of `serveDir`. */
export interface ServeDirOptions {
  /** The file served for a directory. Default: `'index.html'`. */
  index?: string;
  /**
   * Serve files and directories whose name starts with a dot (`.env`, `.git/`). Default:
   * `false` (they are answered with 404 as if absent).
   */
  dotfiles?: boolean;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
};

/**
 * The `Content-Type` for a file name, from its extension (case-insensitive):
 * html, css, js, mjs, json, map, txt, png, jpg/jpeg, gif, webp, svg, ico, wasm.
 * Anything else is `application/octet-stream`.
 */
export function contentTypeFor(fileName: string): string {
  return CONTENT_TYPES[extname(fileName).toLowerCase()] ?? 'application/octet-stream';
}

function notFound(): HttpResponse {
  return HttpResponse.status(404);
}

function forbidden(): HttpResponse {
  return HttpResponse.status(403);
}

function methodNotAllowed(): HttpResponse {
  return HttpResponse.status(405).withHeader('Allow', 'GET, HEAD');
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

/**
 * A response for the regular file `path` with stats `stats`: its content type, length and
 * modification time, the body streamed from disk (never read whole into memory). A `HEAD`
 * request gets the headers only; an `If-Modified-Since` at or after the file's time gets 304.
 */
function fileResponse(request: HttpRequest, path: string, stats: Stats): HttpResponse {
  const lastModified = new Date(Math.floor(stats.mtimeMs / 1000) * 1000);
  const headers = {
    'content-type': contentTypeFor(path),
    'content-length': stats.size,
    'last-modified': lastModified.toUTCString(),
    'x-content-type-options': 'nosniff',
  };
  const since = request.headers['if-modified-since'];
  if (since !== undefined) {
    const sinceTime = Date.parse(since);
    if (!Number.isNaN(sinceTime) && lastModified.getTime() <= sinceTime) {
      return new HttpResponse(304, undefined, { 'last-modified': headers['last-modified'] });
    }
  }
  if (request.method === 'HEAD') return new HttpResponse(200, undefined, headers);
  return new HttpResponse(200, createReadStream(path), headers);
}

/**
 * A route handler serving the single file at `filePath` (GET and HEAD; 404 when it is
 * missing or not a regular file).
 *
 * @example app.withRoute('/favicon.ico', serveFile('./public/favicon.ico'));
 */
export function serveFile(filePath: string): StaticHandler {
  const path = resolve(filePath);
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return methodNotAllowed();
    const stats = await statOrUndefined(path);
    if (!stats?.isFile()) return notFound();
    return fileResponse(request, path, stats);
  };
}

/**
 * A route handler serving the files under `directory`. The file is named by what the
 * route's last `*` matched (`/static/*` + `/static/css/a.css` serves `css/a.css`), or by the
 * whole path for a route without a wildcard.
 *
 * - `Content-Type` comes from the extension (see `contentTypeFor`); files are streamed.
 * - A directory serves its `index.html` (404 if it has none); a directory asked for without
 *   a trailing slash is redirected (301) to the same path with one, so relative links work.
 * - 404 when the file is missing; 405 for methods other than GET and HEAD.
 * - Requests that try to leave the directory (`..` segments, raw or percent-encoded,
 *   backslashes, NUL bytes, malformed percent-encoding) are answered with 403. Dotfiles are
 *   answered with 404 unless `dotfiles: true`. Symbolic links inside the directory are
 *   followed as they are.
 *
 * @example app.withRoute('/static/*', serveDir('./public'));
 */
export function serveDir(directory: string, options: ServeDirOptions = {}): StaticHandler {
  const root = resolve(directory);
  const index = options.index ?? 'index.html';
  const allowDotfiles = options.dotfiles ?? false;

  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return methodNotAllowed();
    const wildcards = request.wildcards;
    const encoded = wildcards.length > 0 ? wildcards[wildcards.length - 1]! : request.path;
    if (encoded.includes('\\') || encoded.includes('\0')) return forbidden();
    let decoded: string;
    try {
      decoded = decodeURIComponent(encoded);
    } catch {
      return forbidden();
    }
    if (decoded.includes('\\') || decoded.includes('\0')) return forbidden();

    const segments: string[] = [];
    for (const segment of decoded.split('/')) {
      if (segment === '' || segment === '.') continue;
      if (segment === '..') return forbidden();
      if (!allowDotfiles && segment.startsWith('.')) return notFound();
      segments.push(segment);
    }
    const target = join(root, ...segments);
    // Belt and braces: whatever the checks above missed, never leave the root.
    if (target !== root && !target.startsWith(root.endsWith(sep) ? root : root + sep)) return forbidden();

    let stats = await statOrUndefined(target);
    if (stats === undefined) return notFound();
    if (stats.isDirectory()) {
      if (!request.path.endsWith('/')) {
        // Collapse leading slashes so the Location can never be a scheme-relative URL.
        const location = '/' + request.path.replace(/^\/+/, '') + '/';
        const queryStart = request.url.indexOf('?');
        return HttpResponse.redirect(location + (queryStart === -1 ? '' : request.url.slice(queryStart)), 301);
      }
      const indexPath = join(target, index);
      stats = await statOrUndefined(indexPath);
      if (!stats?.isFile()) return notFound();
      return fileResponse(request, indexPath, stats);
    }
    if (!stats.isFile()) return notFound();
    return fileResponse(request, target, stats);
  };
}
