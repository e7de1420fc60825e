/**
 * Route patterns: literal paths with `*` wildcards.
 *
 * A `*` matches any run of characters, including none and including `/`, so `/static/*`
 * matches `/static/`, `/static/a.css` and `/static/img/logo.png`, and `/*` matches every
 * path. Everything else is compared literally and case-sensitively; a trailing slash is
 * significant (`/a` does not match `/a/`). Matching is done on the path as sent (still
 * percent-encoded), with any query string or fragment removed first.
 *
 * The matcher is the classic iterative glob algorithm: it backtracks only to the most
 * recent `*`, so its cost is bounded by `pattern.length * path.length` whatever the input,
 * with no regular expressions to blow up on a hostile path.
 */

/**
 * The path part of a request target: the query string and fragment are dropped. An
 * absolute-form target (`http://host/a/b?x`) gives its path (`/a/b`), with dot segments
 * resolved as the URL parser does. Anything else is returned unchanged.
 */
export function requestPath(url: string): string {
  let end = url.length;
  const query = url.indexOf('?');
  if (query !== -1) end = query;
  const hash = url.indexOf('#');
  if (hash !== -1 && hash < end) end = hash;
  const path = end === url.length ? url : url.slice(0, end);
  if (path.startsWith('/') || !/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return path;
  try {
    return new URL(path).pathname;
  } catch {
    return path;
  }
}

/**
 * Matches `path` against `pattern` and returns what each `*` matched, in order, or `null`
 * when it does not match. When a path could be split several ways, earlier wildcards take
 * the shortest match and the last one takes the rest (`/a/*` + `/b/*` style patterns rarely
 * care). The query string of `path` is ignored.
 */
export function matchPathCaptures(pattern: string, path: string): string[] | null {
  const subject = requestPath(path);
  const starts: number[] = [];
  const ends: number[] = [];
  let p = 0;
  let s = 0;
  // Position in the pattern just after the last `*` seen, and where in the subject that
  // wildcard's match currently ends.
  let resumeP = -1;
  let resumeS = 0;
  while (s < subject.length) {
    if (p < pattern.length && pattern.charCodeAt(p) === 42 /* * */) {
      starts.push(s);
      ends.push(s);
      p += 1;
      resumeP = p;
      resumeS = s;
    } else if (p < pattern.length && pattern.charCodeAt(p) === subject.charCodeAt(s)) {
      p += 1;
      s += 1;
    } else if (resumeP !== -1) {
      // Let the last wildcard swallow one more character and retry from there.
      resumeS += 1;
      ends[ends.length - 1] = resumeS;
      p = resumeP;
      s = resumeS;
    } else {
      return null;
    }
  }
  while (p < pattern.length && pattern.charCodeAt(p) === 42) {
    starts.push(s);
    ends.push(s);
    p += 1;
  }
  if (p !== pattern.length) return null;
  const captures: string[] = new Array(starts.length);
  for (let i = 0; i < starts.length; i += 1) captures[i] = subject.slice(starts[i], ends[i]);
  return captures;
}

/**
 * Whether `path` matches the route `pattern` (exact text with `*` wildcards; see the module
 * comment). The query string of `path` is ignored, so a raw `request.url` may be passed.
 *
 * @example
 * matchPath('/static/*', '/static/css/site.css'); // true
 * matchPath('/api/*', '/api/42/info?x=1');        // true (query ignored)
 * matchPath('/chat', '/chat/');                    // false
 */
export function matchPath(pattern: string, path: string): boolean {
  return matchPathCaptures(pattern, path) !== null;
}
