/** Stable identifiers of the errors raised by the HTTP `App`. */
export type HttpAppErrorCode =
  /** `run(address)` was given an address it cannot parse (or a port outside 0..65535). */
  | 'HTTP_ERR_BAD_ADDRESS'
  /** A route pattern that can never match a request path (it must start with `/` or `*`). */
  | 'HTTP_ERR_BAD_ROUTE'
  /** `run()` was called while the app is already running. */
  | 'HTTP_ERR_ALREADY_RUNNING'
  /** `server`, `address` or `url` was read while the app is not running. */
  | 'HTTP_ERR_NOT_RUNNING'
  /** `run()` was given an `AbortSignal` that had already been aborted. */
  | 'HTTP_ERR_ABORTED'
  /** A request body was larger than the app's `maxBodySize` (answered with 413). */
  | 'HTTP_ERR_BODY_TOO_LARGE'
  /** `request.json()` could not parse the body (answered with 400). */
  | 'HTTP_ERR_BAD_JSON'
  /** A route handler returned something that is not an `HttpResponseLike` (answered with 500). */
  | 'HTTP_ERR_BAD_RESPONSE';

/**
 * An error raised by the HTTP `App`, with a stable string `code`. When it is thrown out of a
 * route handler and carries a `status`, the client is answered with that status.
 */
export class HttpAppError extends Error {
  /** A stable identifier of the kind of error. */
  readonly code: HttpAppErrorCode;
  /** The HTTP status this error is answered with when it escapes a route handler. */
  readonly status: number | undefined;

  constructor(code: HttpAppErrorCode, message: string, status?: number) {
    super(message);
    this.name = 'HttpAppError';
    this.code = code;
    this.status = status;
  }
}
