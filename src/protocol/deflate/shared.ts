import { encodeFrame, Opcode } from '../frame.js';
import { PerMessageDeflate } from './codec.js';
import type { DeflateAgreement } from './negotiate.js';

/** What waits for a shared compression: a connection's output queue. */
export interface SharedCompressionReceiver {
  /** The compression is done: write what was waiting for it. */
  writePending(): void;
}

/**
 * One message compressed once for every server connection that agreed `agreement` without
 * server context takeover: each message then starts from an empty window, so the compressed
 * bytes are the same for all of them and one frame is shared (a broadcast to 10,000 such
 * connections runs zlib once). Connections queue it like their own compressions, so their
 * order is kept; when it is done each writes `frame` in turn.
 */
export class SharedCompression {
  readonly opcode: number;
  /** Uncompressed size. */
  readonly size: number;
  /** The complete compressed frame (RSV1 set), once done; null if compression failed. */
  frame: Buffer | null = null;
  done = false;
  private receivers: SharedCompressionReceiver[] | null = [];

  constructor(agreement: DeflateAgreement, payload: Buffer, isText: boolean) {
    if (!agreement.sendNoContextTakeover) throw new Error('a compression is shared only without context takeover');
    this.opcode = isText ? Opcode.Text : Opcode.Binary;
    this.size = payload.length;
    const codec = new PerMessageDeflate(agreement, 0);
    codec.compress(payload, (error, compressed) => {
      codec.close();
      if (error === null) {
        const parts = encodeFrame(this.opcode, compressed!, { rsv1: true });
        this.frame = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      }
      this.done = true;
      const receivers = this.receivers!;
      this.receivers = null;
      for (let i = 0; i < receivers.length; i++) receivers[i]!.writePending();
    });
  }

  /** @internal A connection queued this compression. */
  waitFor(receiver: SharedCompressionReceiver): void {
    this.receivers?.push(receiver);
  }
}
