/**
 * The `Sec-WebSocket-Extensions` header grammar (RFC 6455 section 9.1 over the RFC 7230 list
 * rules):
 *
 *     extension-list  = 1#extension            ; commas, optional whitespace, empty elements
 *     extension       = token *( ";" param )
 *     param           = token [ "=" ( token / quoted-string ) ]
 *
 * A quoted value must be a token once unescaped (RFC 6455 section 9.1). Whitespace is
 * tolerated around `;` and `=`. A malformed element is reported as `null` in its place and the
 * parser goes on with the next element, so one bad offer never hides the good ones after it.
 */

export interface ExtensionParam {
  /** Lower-cased parameter name. */
  name: string;
  /** The value (unquoted), or `true` for a parameter without one. */
  value: string | true;
}

export interface ExtensionElement {
  /** Lower-cased extension name. */
  name: string;
  params: ExtensionParam[];
}

const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

function isTchar(code: number): boolean {
  return code < 128 && TCHAR[code] === 1;
}

/** Whether `text` is a non-empty RFC 7230 token. */
export function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) if (!isTchar(text.charCodeAt(i))) return false;
  return true;
}

const SP = 0x20;
const HTAB = 0x09;
const COMMA = 0x2c;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Thrown inside the parser only, to abandon one element. */
class Malformed {}
const MALFORMED = new Malformed();

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): number {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
  }

  skipSpace(): void {
    while (this.peek() === SP || this.peek() === HTAB) this.pos++;
  }

  token(): string {
    const start = this.pos;
    while (this.pos < this.text.length && isTchar(this.text.charCodeAt(this.pos))) this.pos++;
    if (this.pos === start) throw MALFORMED;
    return this.text.slice(start, this.pos);
  }

  /** A quoted-string (the opening quote is next), unescaped. */
  quoted(): string {
    this.pos++;
    let value = '';
    for (;;) {
      const code = this.peek();
      if (code === -1) throw MALFORMED;
      this.pos++;
      if (code === DQUOTE) return value;
      if (code === BACKSLASH) {
        const escaped = this.peek();
        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        if (escaped === -1 || (escaped < 0x21 && escaped !== SP && escaped !== HTAB) || escaped === 0x7f) throw MALFORMED;
        this.pos++;
        value += this.text[this.pos - 1];
        continue;
      }
      // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
      if ((code < 0x20 && code !== HTAB) || code === 0x7f) throw MALFORMED;
      value += this.text[this.pos - 1];
    }
  }

  /** Move past the next comma outside a quoted-string (or to the end). */
  skipElement(): void {
    let quoted = false;
    while (this.pos < this.text.length) {
      const code = this.text.charCodeAt(this.pos++);
      if (quoted) {
        if (code === BACKSLASH) this.pos++;
        else if (code === DQUOTE) quoted = false;
      } else if (code === DQUOTE) {
        quoted = true;
      } else if (code === COMMA) {
        return;
      }
    }
  }
}

function parseElement(scanner: Scanner): ExtensionElement {
  const name = scanner.token().toLowerCase();
  const params: ExtensionParam[] = [];
  for (;;) {
    scanner.skipSpace();
    const code = scanner.peek();
    if (code === -1) return { name, params };
    if (code === COMMA) {
      scanner.pos++;
      return { name, params };
    }
    if (code !== SEMICOLON) throw MALFORMED;
    scanner.pos++;
    scanner.skipSpace();
    const paramName = scanner.token().toLowerCase();
    scanner.skipSpace();
    if (scanner.peek() !== EQUALS) {
      params.push({ name: paramName, value: true });
      continue;
    }
    scanner.pos++;
    scanner.skipSpace();
    let value: string;
    if (scanner.peek() === DQUOTE) {
      value = scanner.quoted();
      if (!isToken(value)) throw MALFORMED;
    } else {
      value = scanner.token();
    }
    params.push({ name: paramName, value });
  }
}

/**
 * Parse a `Sec-WebSocket-Extensions` value (several header lines are one list). Returns the
 * elements in order; a malformed element is `null`. Never throws.
 */
export function parseExtensions(header: string | readonly string[] | undefined): (ExtensionElement | null)[] {
  const text = header === undefined ? '' : typeof header === 'string' ? header : header.join(',');
  const scanner = new Scanner(text);
  const elements: (ExtensionElement | null)[] = [];
  for (;;) {
    // Empty list elements and whitespace between elements are allowed (RFC 7230 section 7).
    for (;;) {
      scanner.skipSpace();
      if (scanner.peek() !== COMMA) break;
      scanner.pos++;
    }
    if (scanner.done) return elements;
    const start = scanner.pos;
    try {
      elements.push(parseElement(scanner));
    } catch (error) {
      if (error !== MALFORMED) throw error;
      scanner.pos = start;
      scanner.skipElement();
      elements.push(null);
    }
  }
}

/** One element as header text, e.g. `permessage-deflate; client_max_window_bits=10` (values are tokens). */
export function formatExtension(element: ExtensionElement): string {
  let text = element.name;
  for (const param of element.params) {
    text += `; ${param.name}`;
    if (param.value !== true) text += `=${param.value}`;
  }
  return text;
}
