/**
 * Every error this library raises is a `WebSocketError` with a stable string `code`
 * (safe to switch on) and, where the error ends a connection, the RFC 6455 close code sent.
 */
export type WebSocketErrorCode =
  | 'WS_ERR_INVALID_OPCODE'
  | 'WS_ERR_UNEXPECTED_RSV'
  | 'WS_ERR_EXPECTED_MASK'
  | 'WS_ERR_UNEXPECTED_MASK'
  | 'WS_ERR_INVALID_CONTROL_FRAME'
  | 'WS_ERR_UNEXPECTED_CONTINUATION'
  | 'WS_ERR_EXPECTED_CONTINUATION'
  | 'WS_ERR_INVALID_LENGTH'
  | 'WS_ERR_MESSAGE_TOO_BIG'
  | 'WS_ERR_INVALID_UTF8'
  | 'WS_ERR_INVALID_CLOSE_CODE'
  | 'WS_ERR_INVALID_CLOSE_PAYLOAD'
  | 'WS_ERR_HANDSHAKE'
  | 'WS_ERR_CLOSED'
  | 'WS_ERR_CLOSE_TIMEOUT'
  | 'WS_ERR_CONNECTION_LOST'
  | 'WS_ERR_INVALID_ARGUMENT'
  | 'WS_ERR_COMPRESSION'
  | 'WS_ERR_BROKER';

/** What a server answered when it refused an upgrade (on a client's `WS_ERR_HANDSHAKE`). */
export interface HandshakeResponse {
  /** The HTTP status, e.g. 401. */
  status: number;
  /** The response headers, names in lower case. */
  headers: Record<string, string | string[] | undefined>;
  /** The response body as text (at most the first 64 KiB). */
  body: string;
}

export class WebSocketError extends Error {
  /** A stable identifier of the kind of error. */
  readonly code: WebSocketErrorCode;
  /** The close code sent to (or received from) the peer, when the error closed the connection. */
  readonly closeCode: number | undefined;
  /** A refused handshake (client side): the HTTP status the server answered with. */
  readonly status: number | undefined;
  /** A refused handshake (client side): the response headers. */
  readonly headers: HandshakeResponse['headers'] | undefined;
  /** A refused handshake (client side): the response body. */
  readonly body: string | undefined;

  constructor(code: WebSocketErrorCode, message: string, closeCode?: number, response?: HandshakeResponse) {
    super(message);
    this.name = 'WebSocketError';
    this.code = code;
    this.closeCode = closeCode;
    this.status = response?.status;
    this.headers = response?.headers;
    this.body = response?.body;
  }
}
