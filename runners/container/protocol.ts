import { Buffer } from 'node:buffer';

/**
 * The runner ↔ bootstrap channel (runners/python/bootstrap.py): frames of a 4-byte big-endian length and
 * that many bytes of UTF-8 JSON, over a Unix socket on the bootstrap's fd 3.
 */

/** Largest frame the runner accepts: a 6 MB result and 256 KB of logs, JSON-escaped, fit well under it. */
export const MAX_INBOUND_FRAME_BYTES = 32 * 1024 * 1024;

export const encodeFrame = (message: unknown): Buffer => {
  const body = Buffer.from(JSON.stringify(message));
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body], 4 + body.length);
};

export class ProtocolError extends Error {}

/**
 * A parser for the frames arriving in chunks. The other side runs the function's code, so nothing it
 * sends is trusted: an oversized or malformed frame is a `ProtocolError`.
 */
export const createFrameReader = (onMessage: (message: Record<string, unknown>) => void) => {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let expected = -1;

  const take = (bytes: number): Buffer => {
    const joined = pending.length === 1 && pending[0] ? pending[0] : Buffer.concat(pending, pendingBytes);
    const taken = joined.subarray(0, bytes);
    const rest = joined.subarray(bytes);
    pending = rest.length > 0 ? [rest] : [];
    pendingBytes = rest.length;
    return taken;
  };

  return (chunk: Buffer): void => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    for (;;) {
      if (expected < 0) {
        if (pendingBytes < 4) return;
        expected = take(4).readUInt32BE(0);
        if (expected > MAX_INBOUND_FRAME_BYTES) {
          throw new ProtocolError(`the runtime sent a frame of ${expected} bytes`);
        }
      }
      if (pendingBytes < expected) return;
      const body = take(expected);
      expected = -1;
      let message: unknown;
      try {
        message = JSON.parse(body.toString('utf8'));
      } catch {
        throw new ProtocolError('the runtime sent a frame that is not JSON');
      }
      if (typeof message !== 'object' || message === null || Array.isArray(message)) {
        throw new ProtocolError('the runtime sent a frame that is not an object');
      }
      onMessage(message as Record<string, unknown>);
    }
  };
};
