import { Duplex, type DuplexOptions } from 'node:stream';
import { CLOSED, CONNECTING, type WebSocket } from './websocket.js';

function emitClose(stream: Duplex): void {
  stream.emit('close');
}

// Ending the readable side after the writable one finished: the stream is done.
function onEnd(this: Duplex): void {
  if (!this.destroyed && this.writableFinished) this.destroy();
}

// The first error destroys the stream; it is emitted again only if nobody else listens, so an
// unhandled error still throws.
function onError(this: Duplex, error: Error): void {
  this.removeListener('error', onError);
  this.destroy();
  if (this.listenerCount('error') === 0) this.emit('error', error);
}

/**
 * A `Duplex` over a `ws`-style WebSocket: what is written is sent (binary for buffers, text for
 * strings), what is read is the messages' data (text as strings in readable object mode).
 * Reading slower than messages arrive pauses the WebSocket. Ending the writable side closes
 * it; destroying the stream terminates it. `options` go to the `Duplex` constructor.
 */
export function createWebSocketStream(ws: WebSocket, options?: DuplexOptions): Duplex {
  let terminateOnDestroy = true;
  const duplex = new Duplex({
    ...options,
    autoDestroy: false,
    emitClose: false,
    objectMode: false,
    writableObjectMode: false,
  });

  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const chunk = !isBinary && duplex.readableObjectMode ? data.toString() : data;
    if (!duplex.push(chunk)) ws.pause();
  });
  ws.once('error', (error: Error) => {
    if (duplex.destroyed) return;
    // The WebSocket is already being closed; destroying the stream must not terminate it.
    terminateOnDestroy = false;
    duplex.destroy(error);
  });
  ws.once('close', () => {
    if (!duplex.destroyed) duplex.push(null);
  });

  duplex._destroy = (error, callback) => {
    if (ws.readyState === CLOSED) {
      callback(error);
      process.nextTick(emitClose, duplex);
      return;
    }
    let called = false;
    ws.once('error', (wsError: Error) => {
      called = true;
      callback(wsError);
    });
    ws.once('close', () => {
      if (!called) callback(error);
      process.nextTick(emitClose, duplex);
    });
    if (terminateOnDestroy) ws.terminate();
  };

  duplex._final = (callback) => {
    if (ws.readyState === CONNECTING) {
      ws.once('open', () => duplex._final(callback));
      return;
    }
    // A handshake that failed leaves no socket: the error that follows destroys the stream.
    const socket = ws.socket;
    if (socket === null) return;
    if (socket.writableFinished) {
      callback();
      if (duplex.readableEnded) duplex.destroy();
      return;
    }
    socket.once('finish', () => callback());
    ws.close();
  };

  duplex._read = () => {
    if (ws.isPaused) ws.resume();
  };

  duplex._write = (chunk, _encoding, callback) => {
    if (ws.readyState === CONNECTING) {
      ws.once('open', () => duplex._write(chunk, _encoding, callback));
      return;
    }
    ws.send(chunk, callback);
  };

  duplex.on('end', onEnd);
  duplex.on('error', onError);
  return duplex;
}
