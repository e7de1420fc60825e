import { isUtf8 } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import { WebSocketError } from './errors.js';
import { CloseCode, encodeClosePayload, encodeFrame, isValidCloseCode, Opcode } from './frame.js';
import { FrameParser, type ParserEvents } from './parser.js';

export type Role = 'server' | 'client';
export type ConnectionState = 'open' | 'closing' | 'closed';

/**
 * What a `Connection` asks of its owner. Every call is made synchronously from a method of
 * the connection; the owner does the I/O.
 */
export interface ConnectionEvents {
  /** Send these bytes to the peer, in order. Frames may come as a header and a payload. */
  write(bytes: Buffer): void;
  /**
   * Optional, used by a server's connection for every frame it sends when present: send one
   * unmasked frame, which the owner encodes itself (with `writeHeader`), e.g. straight into
   * its output buffer instead of a buffer per frame. It must not modify `payload`, and may
   * keep it until written. Without it, frames are encoded here and passed to `write`.
   */
  writeFrame?(opcode: number, payload: Uint8Array, fin: boolean): void;
  /**
   * Optional, with `writeFrame`: send one unmasked frame whose payload is `parts` in order
   * (`length` bytes in all), without joining them first. Used by `sendParts`.
   */
  writeFrameParts?(opcode: number, parts: readonly Buffer[], length: number): void;
  /** A complete, validated data message. */
  onMessage(payload: Buffer, isText: boolean): void;
  /**
   * Optional: a complete, validated data message that arrived in pieces, as those pieces (see
   * `ParserEvents.onMessageParts`). Without it the pieces are joined and passed to `onMessage`.
   */
  onMessageParts?(parts: Buffer[], length: number, isText: boolean): void;
  /** A ping arrived (the pong has already been written). */
  onPing?(payload: Buffer): void;
  /** A pong arrived. */
  onPong?(payload: Buffer): void;
  /**
   * The WebSocket connection is closed, exactly once: after the close handshake, when the
   * protocol failed (`error` set; the close frame has been written) or when the transport was
   * lost (1006). No more messages will arrive and nothing more can be sent.
   */
  onClose(code: number, reason: string, error: WebSocketError | undefined): void;
  /**
   * This side should now close the transport (after flushing what was written): a server
   * once the close handshake is done, either side after a protocol failure. A client whose
   * handshake completed waits for the server to close, with a timeout of the owner's choosing.
   */
  closeTransport(): void;
}

export interface ConnectionOptions {
  role: Role;
  /**
   * Runs the reply to a peer's close frame, or the close after a protocol error, later than
   * the bytes that caused it: an owner that delivers messages asynchronously passes e.g.
   * `setImmediate` so the app can still answer the messages that arrived just before (an
   * echo before the close). Default: at once.
   */
  defer?: (task: () => void) => void;
  /** Largest incoming data message, across fragments, in bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /** Most frames one incoming data message may arrive in, empty ones included. Default 100,000. */
  maxFragments?: number;
}

// Client frames need a fresh random mask each; drawing 4 bytes from a pool avoids a system
// call per frame.
const MASK_POOL_SIZE = 8192;
let maskPool: Buffer | null = null;
let maskPoolOffset = MASK_POOL_SIZE;
function nextMaskKey(): Buffer {
  if (maskPoolOffset >= MASK_POOL_SIZE) {
    maskPool = randomFillSync(Buffer.allocUnsafe(MASK_POOL_SIZE));
    maskPoolOffset = 0;
  }
  const key = maskPool!.subarray(maskPoolOffset, maskPoolOffset + 4);
  maskPoolOffset += 4;
  return key;
}

const EMPTY = Buffer.alloc(0);
const runNow = (task: () => void): void => task();

/**
 * One endpoint of a WebSocket connection, without I/O: feed it the peer's bytes with
 * `receive`, call `send`/`ping`/`close` to produce bytes, and do what its events ask.
 * It answers pings, runs the close handshake and fails the connection with the right close
 * code when the peer breaks the protocol.
 */
export class Connection implements ParserEvents {
  readonly role: Role;
  private readonly events: ConnectionEvents;
  private readonly parser: FrameParser;
  private readonly defer: (task: () => void) => void;
  private readyState: ConnectionState = 'open';
  private closeSent = false;
  /** Whether an outgoing fragmented message is open, and of which kind. */
  private sendingFragmented: 0 | 1 | 2 = 0;
  /** Frames go to `events.writeFrame` (a server whose owner encodes them). */
  private readonly ownerEncodes: boolean;
  /** Messages that arrived in pieces go to `events.onMessageParts`. */
  private readonly ownerTakesParts: boolean;

  constructor(events: ConnectionEvents, options: ConnectionOptions) {
    this.role = options.role;
    this.events = events;
    this.defer = options.defer ?? runNow;
    this.ownerEncodes = this.role === 'server' && typeof events.writeFrame === 'function';
    this.ownerTakesParts = typeof events.onMessageParts === 'function';
    // The connection is the parser's event sink itself: no per-connection closures.
    this.parser = new FrameParser(this, options);
  }

  /** @internal Parser event: a complete message. */
  onMessage(payload: Buffer, isText: boolean): void {
    this.events.onMessage(payload, isText);
  }

  /** @internal Parser event: a complete message in pieces. */
  onMessageParts(parts: Buffer[], length: number, isText: boolean): void {
    if (this.ownerTakesParts) this.events.onMessageParts!(parts, length, isText);
    else this.events.onMessage(Buffer.concat(parts, length), isText);
  }

  /** @internal Parser event: a control frame. */
  onControl(opcode: number, payload: Buffer): void {
    this.handleControl(opcode, payload);
  }

  /** @internal Parser event: the peer broke the protocol. */
  onError(error: WebSocketError): void {
    this.failWith(error);
  }

  get state(): ConnectionState {
    return this.readyState;
  }

  /** Feed bytes received from the peer. The buffer may be modified and retained. */
  receive(bytes: Buffer): void {
    this.parser.push(bytes);
  }

  /** Send one whole message. Throws `WS_ERR_CLOSED` once a close frame has been sent. */
  send(payload: Uint8Array, isText: boolean): void {
    this.assertCanSend();
    if (this.sendingFragmented !== 0) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a fragmented message is being sent; finish it first');
    }
    this.writeFrame(isText ? Opcode.Text : Opcode.Binary, payload, true);
  }

  /**
   * Send one whole message given as pieces, in order (e.g. a received message that arrived in
   * pieces, echoed): a server whose owner writes frame pieces (`writeFrameParts`) sends them
   * without joining them. Throws like `send`.
   */
  sendParts(parts: readonly Buffer[], isText: boolean): void {
    this.assertCanSend();
    if (this.sendingFragmented !== 0) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a fragmented message is being sent; finish it first');
    }
    const opcode = isText ? Opcode.Text : Opcode.Binary;
    if (this.ownerEncodes && this.events.writeFrameParts !== undefined) {
      let length = 0;
      for (let i = 0; i < parts.length; i++) length += parts[i]!.length;
      this.events.writeFrameParts(opcode, parts, length);
      return;
    }
    this.writeFrame(opcode, parts.length === 1 ? parts[0]! : Buffer.concat(parts), true);
  }

  /**
   * Send one fragment of a message; `fin` marks the last. The first fragment decides whether
   * the message is text. Other messages cannot be sent until the last fragment is.
   */
  sendFragment(payload: Uint8Array, isText: boolean, fin: boolean): void {
    this.assertCanSend();
    let opcode: number = Opcode.Continuation;
    if (this.sendingFragmented === 0) {
      opcode = isText ? Opcode.Text : Opcode.Binary;
      this.sendingFragmented = isText ? 1 : 2;
    }
    if (fin) this.sendingFragmented = 0;
    this.writeFrame(opcode, payload, fin);
  }

  /**
   * Send bytes that are already a complete frame (used to write one encoded broadcast frame
   * to many connections). Only servers may do this: a client must mask every frame itself.
   */
  sendEncoded(frame: Buffer): void {
    this.assertCanSend();
    if (this.role !== 'server') throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a client cannot send pre-encoded frames');
    if (this.sendingFragmented !== 0 && (frame[0]! & 0x08) === 0) {
      // A data frame here would start a new message inside the open fragmented one.
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a fragmented message is being sent; finish it first');
    }
    this.events.write(frame);
  }

  ping(payload: Uint8Array = EMPTY): void {
    this.assertCanSend();
    if (payload.length > 125) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'ping payload over 125 bytes');
    this.writeFrame(Opcode.Ping, payload, true);
  }

  pong(payload: Uint8Array = EMPTY): void {
    this.assertCanSend();
    if (payload.length > 125) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'pong payload over 125 bytes');
    this.writeFrame(Opcode.Pong, payload, true);
  }

  /**
   * Start the close handshake. `code` must be 1000 or 3000-4999 (or omitted for a close frame
   * without a code); `reason` at most 123 bytes of UTF-8. Does nothing if already closing.
   */
  close(code?: number, reason = ''): void {
    if (this.closeSent || this.readyState === 'closed') return;
    if (code !== undefined && !(Number.isInteger(code) && isValidCloseCode(code))) {
      throw new WebSocketError('WS_ERR_INVALID_CLOSE_CODE', `close code ${code} cannot be sent`);
    }
    if (code === undefined && reason !== '') {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a close reason needs a close code');
    }
    if (Buffer.byteLength(reason) > 123) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'close reason over 123 bytes');
    }
    this.sendClose(code, reason);
    this.readyState = 'closing';
  }

  /**
   * The transport closed (or failed). If the WebSocket was not closed yet this reports 1006;
   * `error` is the transport's error, if any. A `WebSocketError` (such as the owner's
   * `WS_ERR_CLOSE_TIMEOUT`) is reported as it is; anything else as `WS_ERR_CONNECTION_LOST`.
   */
  transportClosed(error?: Error): void {
    this.parser.stop();
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    const lost = error instanceof WebSocketError
      ? error
      : new WebSocketError(
        'WS_ERR_CONNECTION_LOST',
        error ? `connection lost: ${error.message}` : 'connection closed without a close frame',
        CloseCode.Abnormal,
      );
    this.events.onClose(CloseCode.Abnormal, '', lost);
  }

  /** Fail the connection from outside the parser (e.g. an app-level policy), with `code`. */
  fail(error: WebSocketError): void {
    this.failWith(error);
  }

  private assertCanSend(): void {
    if (this.closeSent || this.readyState !== 'open') {
      throw new WebSocketError('WS_ERR_CLOSED', 'the connection is closing or closed');
    }
  }

  private writeFrame(opcode: number, payload: Uint8Array, fin: boolean): void {
    if (this.ownerEncodes) {
      this.events.writeFrame!(opcode, payload, fin);
      return;
    }
    const maskKey = this.role === 'client' ? nextMaskKey() : undefined;
    const frames = encodeFrame(opcode, payload, { fin, maskKey });
    this.events.write(frames[0]!);
    if (frames.length > 1) this.events.write(frames[1]!);
  }

  private sendClose(code: number | undefined, reason: string): void {
    this.closeSent = true;
    this.writeFrame(Opcode.Close, encodeClosePayload(code, reason), true);
  }

  private handleControl(opcode: number, payload: Buffer): void {
    if (opcode === Opcode.Ping) {
      if (!this.closeSent) this.writeFrame(Opcode.Pong, payload, true);
      this.events.onPing?.(payload);
    } else if (opcode === Opcode.Pong) {
      this.events.onPong?.(payload);
    } else {
      this.handleClose(payload);
    }
  }

  private handleClose(payload: Buffer): void {
    let code: number = CloseCode.NoStatus;
    let reason = '';
    if (payload.length === 1) {
      this.failWith(new WebSocketError('WS_ERR_INVALID_CLOSE_PAYLOAD', 'close payload of 1 byte', CloseCode.ProtocolError));
      return;
    }
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isValidCloseCode(code)) {
        this.failWith(new WebSocketError('WS_ERR_INVALID_CLOSE_CODE', `invalid close code ${code}`, CloseCode.ProtocolError));
        return;
      }
      const reasonBytes = payload.subarray(2);
      if (!isUtf8(reasonBytes)) {
        this.failWith(new WebSocketError('WS_ERR_INVALID_UTF8', 'close reason is not valid UTF-8', CloseCode.InvalidPayload));
        return;
      }
      reason = reasonBytes.toString();
    }
    // Nothing after a close frame is processed.
    this.parser.stop();
    this.defer(() => {
      if (this.readyState === 'closed') return;
      if (!this.closeSent) this.sendClose(code === CloseCode.NoStatus ? undefined : code, '');
      this.readyState = 'closed';
      if (this.role === 'server') this.events.closeTransport();
      this.events.onClose(code, reason, undefined);
    });
  }

  private failWith(error: WebSocketError): void {
    this.parser.stop();
    if (this.readyState === 'closed') return;
    this.defer(() => {
      if (this.readyState === 'closed') return;
      if (!this.closeSent) this.sendClose(error.closeCode ?? CloseCode.ProtocolError, '');
      this.readyState = 'closed';
      this.events.closeTransport();
      this.events.onClose(error.closeCode ?? CloseCode.ProtocolError, '', error);
    });
  }
}
