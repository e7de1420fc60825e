import type { WebSocketError } from '../../protocol/errors.js';

/**
 * An error as `ws` reports it: its class (`RangeError` for a broken frame, `Error` for bad
 * UTF-8), its `code` string and its message, with the close code sent as `closeCode` and the
 * library's own `WebSocketError` as `cause`.
 */
export type WsError = Error & { code: string; closeCode: number | undefined };

const FRAME = 'Invalid WebSocket frame: ';

function make(kind: ErrorConstructor | RangeErrorConstructor, message: string, code: string, cause: WebSocketError): WsError {
  const error = new kind(message, { cause }) as WsError;
  error.code = code;
  error.closeCode = cause.closeCode;
  return error;
}

/** The number a message of ours ends with (an opcode, a length, a close code), if any. */
function numberIn(message: string): string | undefined {
  return /(\d+)(?!.*\d)/.exec(message)?.[1];
}

/** The error `ws` raises for the protocol violation `error` describes. */
export function toWsError(error: WebSocketError): WsError {
  const message = error.message;
  switch (error.code) {
    case 'WS_ERR_INVALID_OPCODE':
      return make(RangeError, `${FRAME}invalid opcode ${numberIn(message) ?? ''}`.trimEnd(), 'WS_ERR_INVALID_OPCODE', error);
    case 'WS_ERR_UNEXPECTED_CONTINUATION':
      return make(RangeError, `${FRAME}invalid opcode 0`, 'WS_ERR_INVALID_OPCODE', error);
    case 'WS_ERR_EXPECTED_CONTINUATION':
      return make(RangeError, `${FRAME}invalid opcode (a new message inside a fragmented one)`, 'WS_ERR_INVALID_OPCODE', error);
    case 'WS_ERR_UNEXPECTED_RSV':
      return make(RangeError, `${FRAME}RSV1 must be clear`, 'WS_ERR_UNEXPECTED_RSV_1', error);
    case 'WS_ERR_EXPECTED_MASK':
      return make(RangeError, `${FRAME}MASK must be set`, 'WS_ERR_EXPECTED_MASK', error);
    case 'WS_ERR_UNEXPECTED_MASK':
      return make(RangeError, `${FRAME}MASK must be clear`, 'WS_ERR_UNEXPECTED_MASK', error);
    case 'WS_ERR_INVALID_CONTROL_FRAME':
      return /fragment/.test(message)
        ? make(RangeError, `${FRAME}FIN must be set`, 'WS_ERR_EXPECTED_FIN', error)
        : make(RangeError, `${FRAME}invalid payload length`, 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', error);
    case 'WS_ERR_INVALID_CLOSE_PAYLOAD':
      return make(RangeError, `${FRAME}invalid payload length 1`, 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', error);
    case 'WS_ERR_INVALID_LENGTH':
      return make(RangeError, 'Unsupported WebSocket frame: payload length > 2^53 - 1', 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', error);
    case 'WS_ERR_MESSAGE_TOO_BIG':
      return make(RangeError, 'Max payload size exceeded', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', error);
    case 'WS_ERR_INVALID_UTF8':
      return make(Error, `${FRAME}invalid UTF-8 sequence`, 'WS_ERR_INVALID_UTF8', error);
    case 'WS_ERR_INVALID_CLOSE_CODE':
      return make(RangeError, `${FRAME}invalid status code ${numberIn(message) ?? ''}`.trimEnd(), 'WS_ERR_INVALID_CLOSE_CODE', error);
    default:
      return make(Error, message, error.code, error);
  }
}

/** Errors that end a connection without `ws` emitting `error` (it reports only a 1006 close). */
export function isTransportEnd(error: WebSocketError): boolean {
  return error.code === 'WS_ERR_CONNECTION_LOST' || error.code === 'WS_ERR_CLOSE_TIMEOUT' || error.code === 'WS_ERR_CLOSED';
}
