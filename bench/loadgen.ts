// A lean HTTP/1.1 load generator: one keep-alive socket per caller, the request's bytes built once, and a
// response read only as far as its status line and Content-Length (or chunked framing). node:http's client
// spends ~150 µs of CPU per request; on a 2-core machine that CPU is taken from the server under test, so the
// generator is written the way wrk and autocannon are: as little work per request as HTTP allows.
import { connect, type Socket } from 'node:net';

export interface RequestSpec {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface Response {
  readonly status: number;
  /** The body, when `keepBody` asked for it. */
  readonly body?: string;
}

export interface Connection {
  /** Sends the request and resolves with the response once all of it has arrived. */
  send(keepBody: boolean): Promise<Response>;
  close(): void;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CHUNK_LINE_END = Buffer.from('\r\n');

const requestBytes = (spec: RequestSpec, url: URL): Buffer => {
  const body = Buffer.from(spec.body);
  const lines = [`${spec.method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(spec.headers)) lines.push(`${name}: ${value}`);
  if (body.byteLength > 0 || spec.method === 'POST') lines.push(`Content-Length: ${body.byteLength}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]);
};

/** Where a chunked body ends in `data` (from `start`), or -1 while more is to come. */
const chunkedEnd = (data: Buffer, start: number): number => {
  let at = start;
  for (;;) {
    const lineEnd = data.indexOf(CHUNK_LINE_END, at);
    if (lineEnd === -1) return -1;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size)) throw new Error('malformed chunked response');
    const next = lineEnd + 2 + size + 2;
    if (next > data.byteLength) return -1;
    if (size === 0) return next;
    at = next;
  }
};

/** Opens one keep-alive connection for `spec`'s server; requests on it go one at a time. */
export const openConnection = (spec: RequestSpec): Promise<Connection> => {
  const url = new URL(spec.url);
  const bytes = requestBytes(spec, url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: url.hostname, port: Number(url.port), noDelay: true });
    let pending: { keepBody: boolean; resolve: (response: Response) => void; reject: (error: Error) => void } | null =
      null;
    let received: Buffer | null = null;
    const fail = (error: Error) => {
      const waiting = pending;
      pending = null;
      waiting?.reject(error);
    };
    socket.on('data', (chunk: Buffer) => {
      received = received === null ? chunk : Buffer.concat([received, chunk]);
      const headerEnd = received.indexOf(HEADER_END);
      if (headerEnd === -1 || pending === null) return;
      const head = received.subarray(0, headerEnd).toString('latin1');
      const status = Number(head.slice(9, 12));
      const bodyStart = headerEnd + 4;
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      let end: number;
      if (length !== null) end = bodyStart + Number(length[1]);
      else if (/\r\ntransfer-encoding: *chunked/i.test(head)) end = chunkedEnd(received, bodyStart);
      else end = bodyStart;
      if (end === -1 || end > received.byteLength) return;
      const waiting = pending;
      const body = waiting.keepBody ? received.subarray(bodyStart, end).toString() : undefined;
      received = end === received.byteLength ? null : received.subarray(end);
      pending = null;
      waiting.resolve(body === undefined ? { status } : { status, body });
    });
    socket.on('error', (error) => {
      fail(error);
      reject(error);
    });
    socket.on('close', () => fail(new Error('the server closed the connection')));
    socket.once('connect', () =>
      resolve({
        send: (keepBody) =>
          new Promise<Response>((settle, refuse) => {
            pending = { keepBody, resolve: settle, reject: refuse };
            socket.write(bytes);
          }),
        close: () => socket.destroy(),
      }),
    );
  });
};
