import WebSocket from 'ws';

export interface Received {
  data: Buffer;
  isBinary: boolean;
}

export interface TestClient {
  socket: WebSocket;
  /** The next message (in arrival order); rejects after 5 s. */
  next(): Promise<Received>;
  /** The next message as text. */
  nextText(): Promise<string>;
  /** The close code, once closed. */
  closed: Promise<number>;
  /** The client's local port (what the server sees as the peer port). */
  localPort: number;
}

/** A `ws` client that queues every message; resolves once open. */
export async function openClient(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
  const socket = new WebSocket(url, options);
  const queue: Received[] = [];
  const waiting: ((message: Received) => void)[] = [];
  socket.on('message', (data: Buffer, isBinary: boolean) => {
    const message = { data, isBinary };
    const waiter = waiting.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  const closed = new Promise<number>((resolve) => socket.once('close', (code: number) => resolve(code)));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const next = (): Promise<Received> => {
    const queued = queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message within 5 s')), 5000);
      waiting.push((message) => {
        clearTimeout(timer);
        resolve(message);
      });
    });
  };
  const localPort = (socket as unknown as { _socket: { localPort: number } })._socket.localPort;
  return { socket, next, nextText: async () => (await next()).data.toString(), closed, localPort };
}
