import { isUtf8 } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import { WebSocketError } from './errors.js';
import { CloseCode, encodeClosePayload, encodeFrame, isValidCloseCode, Opcode, SharedFrame } from './frame.js';
import { FrameParser, DEFAULT_MAX_MESSAGE_SIZE, type ParserEvents } from './parser.js';
import { PerMessageDeflate } from './deflate/codec.js';
import type { DeflateAgreement } from './deflate/negotiate.js';
import type { SharedCompression } from './deflate/shared.js';
import type { FrameOutput } from './output.js';

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
   * Optional, used by a server's connection for every frame it encodes when present: the
   * owner's output for now (see `FrameOutput`), which the connection encodes its frames into
   * instead of making a buffer per frame for `write`; the owner writes it out later, in order
   * with what it got through `write` (which should go into the same output). Null when
   * nothing can be written anymore (the frame is dropped).
   */
  turnOutput?(): FrameOutput | null;
  /** A complete, validated data message. */
  onMessage(payload: Buffer, isText: boolean): void;
  /**
   * Optional: a complete, validated data message that arrived in pieces, as those pieces (see
   * `ParserEvents.onMessageParts`). Without it the pieces are joined and passed to `onMessage`.
   */
  onMessageParts?(parts: Buffer[], length: number, isText: boolean): void;
  /**
   * Optional: stop (`true`) or restart (`false`) reading from the transport. Asked while more
   * than `HELD_INPUT_LIMIT` bytes wait behind a message that is being decompressed.
   */
  holdInput?(held: boolean): void;
  /** A ping arrived (the pong has already been written, unless `autoPong` is false). */
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
   * echo before the close). Default: at once. (Set by the socket adapter, not by apps.)
   * @internal
   */
  defer?: (task: () => void) => void;
  /** Largest incoming data message, across fragments, in bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /** Most frames one incoming data message may arrive in, empty ones included. Default 100,000. */
  maxFragments?: number;
  /**
   * What permessage-deflate negotiation agreed (RFC 7692), or null/undefined when the
   * extension is not in use: then RSV1 fails the connection and nothing is compressed.
   */
  deflate?: DeflateAgreement | null;
  /**
   * Answer every ping with a pong at once. Default true; with false the owner sees the ping
   * (`onPing`) and answers it itself, if it wants to.
   */
  autoPong?: boolean;
  /**
   * A client's source of masking keys: fills the 4 bytes it is given. Default: random bytes
   * from a pool (RFC 6455 section 5.3 wants them unpredictable; use this for tests only).
   */
  generateMask?: (mask: Buffer) => void;
}

/**
 * Input waiting behind a message that is being decompressed, above which the owner is asked to
 * stop reading (`holdInput`).
 */
export const HELD_INPUT_LIMIT = 256 * 1024;

/** A message waiting for its compression, in the order of the connection's output. */
interface PendingCompression {
  opcode: number;
  /** The compressed payload, once done (null also when compression failed). */
  payload: Buffer | null;
  done: boolean;
  /** Uncompressed size, counted in `pendingOutputBytes` until written. */
  size: number;
  /** A compression shared with other connections (its frame is written as it is). */
  shared: SharedCompression | null;
}

/** Output that waits for an earlier compression: a compressed message or any later write. */
type PendingOutput = PendingCompression | (() => void);

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

/** A payload must be bytes: checked before any byte of its frame is produced. */
function assertBytes(payload: unknown): void {
  if (!(payload instanceof Uint8Array)) {
    throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a frame payload must be a Uint8Array');
  }
}
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
  /** Frames are encoded into `events.turnOutput()` (a server whose owner batches its output). */
  private readonly ownerBatches: boolean;
  /** Messages that arrived in pieces go to `events.onMessageParts`. */
  private readonly ownerTakesParts: boolean;
  private readonly deflateAgreement: DeflateAgreement | null;
  private readonly maxMessageSize: number;
  /** The permessage-deflate codec, created on first use. */
  private codec: PerMessageDeflate | null = null;
  private inflatedFn: ((error: WebSocketError | null, message: Buffer[] | null, length: number) => void) | null = null;
  private inputHeld = false;
  /** The kind of the compressed message being decompressed. */
  private inflatedIsText = false;
  /** Output behind a compression in progress, in order; null when nothing waits. */
  private pendingOutput: PendingOutput[] | null = null;
  private pendingBytes = 0;
  private readonly autoPong: boolean;
  private readonly generateMask: ((mask: Buffer) => void) | undefined;

  constructor(events: ConnectionEvents, options: ConnectionOptions) {
    this.role = options.role;
    this.events = events;
    this.defer = options.defer ?? runNow;
    this.ownerBatches = this.role === 'server' && typeof events.turnOutput === 'function';
    this.ownerTakesParts = typeof events.onMessageParts === 'function';
    this.deflateAgreement = options.deflate ?? null;
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.autoPong = options.autoPong ?? true;
    this.generateMask = options.generateMask;
    // The connection is the parser's event sink itself: no per-connection closures.
    this.parser = new FrameParser(this, { role: options.role, maxMessageSize: options.maxMessageSize, maxFragments: options.maxFragments, compressed: this.deflateAgreement !== null });
  }

  /** The permessage-deflate agreement in use, or null. */
  get deflate(): DeflateAgreement | null {
    return this.deflateAgreement;
  }

  /** Bytes of messages accepted by `send` that wait for a compression (not yet written). */
  get pendingOutputBytes(): number {
    return this.pendingBytes;
  }

  /** Whether a message of `length` bytes is sent compressed. */
  compresses(length: number): boolean {
    const agreement = this.deflateAgreement;
    return agreement !== null && agreement.sendWindowBits !== 0 && length >= agreement.threshold;
  }

  private deflateCodec(): PerMessageDeflate {
    return (this.codec ??= new PerMessageDeflate(this.deflateAgreement!, this.maxMessageSize));
  }

  /**
   * @internal Parser event: a frame of a compressed message. Parsing waits until it is
   * decompressed, so what follows (later messages, the close) cannot overtake it.
   */
  onCompressedFrame(payload: Buffer, fin: boolean, isText: boolean): void {
    this.parser.hold();
    this.inflatedIsText = isText;
    this.deflateCodec().decompress(payload, fin, isText, (this.inflatedFn ??= (error, message, length) => this.inflated(error, message, length)));
  }

  private inflated(error: WebSocketError | null, message: Buffer[] | null, length: number): void {
    if (this.readyState === 'closed') return;
    if (error !== null) {
      this.failWith(error);
      return;
    }
    if (message !== null) {
      if (message.length <= 1) this.events.onMessage(message.length === 0 ? EMPTY : message[0]!, this.inflatedIsText);
      else if (this.ownerTakesParts) this.events.onMessageParts!(message, length, this.inflatedIsText);
      else this.events.onMessage(Buffer.concat(message, length), this.inflatedIsText);
    }
    this.parser.resume();
    this.checkHeldInput();
  }

  private checkHeldInput(): void {
    const held = this.parser.heldBytes > HELD_INPUT_LIMIT;
    if (held === this.inputHeld) return;
    this.inputHeld = held;
    this.events.holdInput?.(held);
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
    if (this.parser.heldBytes > 0) this.checkHeldInput();
  }

  /** Send one whole message. Throws `WS_ERR_CLOSED` once a close frame has been sent. */
  send(payload: Uint8Array, isText: boolean): void {
    this.assertCanSend();
    assertBytes(payload);
    if (this.sendingFragmented !== 0) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a fragmented message is being sent; finish it first');
    }
    const opcode = isText ? Opcode.Text : Opcode.Binary;
    if (this.deflateAgreement !== null) {
      if (this.compresses(payload.length)) {
        this.compressAndSend(opcode, Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length));
        return;
      }
      if (this.pendingOutput !== null) {
        this.afterOutput(() => this.writeFrame(opcode, payload, true));
        return;
      }
    }
    this.writeFrame(opcode, payload, true);
  }

  /**
   * Send one whole message given as pieces, in order (e.g. a received message that arrived in
   * pieces, echoed): a server whose owner batches its output (`turnOutput`) sends them without
   * joining them. Throws like `send`.
   */
  sendParts(parts: readonly Buffer[], isText: boolean): void {
    this.assertCanSend();
    if (this.sendingFragmented !== 0) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a fragmented message is being sent; finish it first');
    }
    const opcode = isText ? Opcode.Text : Opcode.Binary;
    if (this.deflateAgreement !== null) {
      let length = 0;
      for (let i = 0; i < parts.length; i++) length += parts[i]!.length;
      if (this.compresses(length)) {
        this.compressAndSend(opcode, parts, length);
        return;
      }
      if (this.pendingOutput !== null) {
        const copy = parts.slice();
        this.afterOutput(() => this.writeParts(opcode, copy));
        return;
      }
    }
    this.writeParts(opcode, parts);
  }

  private writeParts(opcode: number, parts: readonly Buffer[]): void {
    if (this.ownerBatches) {
      let length = 0;
      for (let i = 0; i < parts.length; i++) length += parts[i]!.length;
      this.events.turnOutput!()?.frameParts(opcode, parts, length);
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
    assertBytes(payload);
    let opcode: number = Opcode.Continuation;
    if (this.sendingFragmented === 0) {
      opcode = isText ? Opcode.Text : Opcode.Binary;
      this.sendingFragmented = isText ? 1 : 2;
    }
    if (fin) this.sendingFragmented = 0;
    // Fragments are sent uncompressed (the extension decides per message), after any
    // message still being compressed.
    if (this.pendingOutput !== null) this.afterOutput(() => this.writeFrame(opcode, payload, fin));
    else this.writeFrame(opcode, payload, fin);
  }

  /**
   * Compress a message and send it with RSV1 set. Until it is written, later output (other
   * than pings and pongs) waits behind it, so messages keep their order and every compressed
   * message goes through the one compressor in order.
   */
  private compressAndSend(opcode: number, data: Buffer | readonly Buffer[], size = (data as Buffer).length): void {
    const pending: PendingCompression = { opcode, payload: null, done: false, size, shared: null };
    (this.pendingOutput ??= []).push(pending);
    this.pendingBytes += size;
    this.deflateCodec().compress(Buffer.isBuffer(data) ? data : data.slice(), (error, payload) => {
      pending.done = true;
      pending.payload = payload;
      if (error !== null) {
        this.failWith(error);
      }
      this.writePending();
    });
  }

  /**
   * Send a frame encoded once for many connections: a `SharedFrame` from `encodeShared` (a
   * broadcast, a heartbeat ping), or a message compressed once (`SharedCompression`, for a
   * connection whose agreement is the compression's). Only a server may: a client masks every
   * frame itself. Throws like `send`; a shared ping or pong may go inside a fragmented message
   * and, like `ping`, does not wait for a compression in progress.
   */
  sendShared(shared: SharedFrame | SharedCompression): void {
    this.assertCanSend();
    if (this.role !== 'server') throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a client cannot send pre-encoded frames');
    if (shared instanceof SharedFrame && shared.isControl) {
      this.events.write(shared.bytes);
      return;
    }
    if (this.sendingFragmented !== 0) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a fragmented message is being sent; finish it first');
    }
    if (shared instanceof SharedFrame) {
      const bytes = shared.bytes;
      if (this.pendingOutput !== null) this.afterOutput(() => this.events.write(bytes));
      else this.events.write(bytes);
      return;
    }
    if (shared.done && this.pendingOutput === null) {
      if (shared.frame !== null) this.events.write(shared.frame);
      return;
    }
    (this.pendingOutput ??= []).push({ opcode: shared.opcode, payload: null, done: false, size: shared.size, shared });
    this.pendingBytes += shared.size;
    shared.waitFor(this);
  }

  /** Run `write` now, or after the output that waits for a compression. */
  private afterOutput(write: () => void): void {
    if (this.pendingOutput === null) write();
    else this.pendingOutput.push(write);
  }

  /** @internal Write the waiting output up to the first compression not done yet. */
  writePending(): void {
    const queue = this.pendingOutput;
    if (queue === null) return;
    while (queue.length > 0) {
      const head = queue[0]!;
      if (typeof head === 'function') {
        queue.shift();
        head();
        continue;
      }
      const shared = head.shared;
      if (!(shared === null ? head.done : shared.done)) return;
      queue.shift();
      this.pendingBytes -= head.size;
      if (shared !== null) {
        if (shared.frame !== null) this.events.write(shared.frame);
      } else if (head.payload !== null) {
        this.writeFrame(head.opcode, head.payload, true, true);
      }
    }
    if (this.pendingOutput !== queue) return;
    this.pendingOutput = null;
    if (this.readyState === 'closed') this.codec?.close();
  }

  ping(payload: Uint8Array = EMPTY): void {
    this.assertCanSend();
    assertBytes(payload);
    if (payload.length > 125) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'ping payload over 125 bytes');
    this.writeFrame(Opcode.Ping, payload, true);
  }

  pong(payload: Uint8Array = EMPTY): void {
    this.assertCanSend();
    assertBytes(payload);
    if (payload.length > 125) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'pong payload over 125 bytes');
    this.writeFrame(Opcode.Pong, payload, true);
  }

  /**
   * Start the close handshake. `code` must be one a close frame may carry (`isValidCloseCode`:
   * 1000-1003, 1007-1014 or 3000-4999), or omitted for a close frame without a code; `reason`
   * at most 123 bytes of UTF-8 (and only with a code). Does nothing if already closing.
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
    this.codec?.close();
    this.pendingOutput = null;
    this.pendingBytes = 0;
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

  private writeFrame(opcode: number, payload: Uint8Array, fin: boolean, rsv1 = false): void {
    if (this.ownerBatches) {
      this.events.turnOutput!()?.frame(opcode, payload, fin, rsv1);
      return;
    }
    const maskKey = this.role !== 'client' ? undefined : this.generateMask === undefined ? nextMaskKey() : this.ownMaskKey();
    const frames = encodeFrame(opcode, payload, { fin, rsv1, maskKey });
    this.events.write(frames[0]!);
    if (frames.length > 1) this.events.write(frames[1]!);
  }

  private ownMaskKey(): Buffer {
    const key = Buffer.alloc(4);
    this.generateMask!(key);
    return key;
  }

  private sendClose(code: number | undefined, reason: string): void {
    this.closeSent = true;
    const payload = encodeClosePayload(code, reason);
    // The close goes after every message accepted before it.
    this.afterOutput(() => this.writeFrame(Opcode.Close, payload, true));
  }

  private handleControl(opcode: number, payload: Buffer): void {
    if (opcode === Opcode.Ping) {
      if (!this.closeSent && this.autoPong) this.writeFrame(Opcode.Pong, payload, true);
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
      this.finish();
      this.afterOutput(() => {
        if (this.role === 'server') this.events.closeTransport();
      });
      this.events.onClose(code, reason, undefined);
    });
  }

  private failWith(error: WebSocketError): void {
    this.parser.stop();
    if (this.readyState === 'closed') return;
    this.defer(() => {
      if (this.readyState === 'closed') return;
      // A failure does not wait for messages still being compressed.
      this.pendingOutput = null;
      this.pendingBytes = 0;
      if (!this.closeSent) this.sendClose(error.closeCode ?? CloseCode.ProtocolError, '');
      this.finish();
      this.events.closeTransport();
      this.events.onClose(error.closeCode ?? CloseCode.ProtocolError, '', error);
    });
  }

  /** The WebSocket is closed: no more input is decompressed. */
  private finish(): void {
    this.readyState = 'closed';
    // Compressions still pending are finished first (their output precedes the close frame).
    if (this.pendingOutput === null) this.codec?.close();
    this.parser.stop();
  }
}
