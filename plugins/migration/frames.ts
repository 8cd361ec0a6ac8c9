import { createHash, type Hash } from 'node:crypto';
import type * as net from 'node:net';
import { MigrationError } from './errors.js';

/** Frame types of the migration stream (source -> destination unless noted). */
export const FrameType = {
  /** JSON: format, version, the VM's config, plugins and memory regions. */
  Hello: 1,
  /** u64 LE memory-file offset, then whole pages. */
  Pages: 2,
  /** u64 offset, u64 length: pages that are zero now. */
  Zeros: 3,
  /** JSON progress of a round (informational). */
  Progress: 4,
  /** JSON: the saved states (saveVmState) at the stop. */
  State: 5,
  /** sha256 of every frame before it (header and payload). */
  End: 6,
  /** Either side: UTF-8 reason; the migration is off. */
  Abort: 7,
  /** Destination: the stream checked out, ready to take over. */
  Ready: 8,
  /** Source: the source VM stopped and released its files; start. */
  Commit: 9,
  /** Destination: the VM runs. */
  Started: 10,
  /**
   * Destination: its VM is built (or will be built only after Commit): the source may stop the guest. Sent once,
   * after the Hello, before Ready.
   */
  Prepared: 11,
  /**
   * Destination: JSON `{ progress, bytes }` after each Progress frame: how many Progress frames it went through and
   * the payload bytes it read and wrote into guest memory by then (version 3). The source prices the last copy and
   * decides to stop on what landed there, not on what it handed to its socket.
   */
  Ack: 12,
} as const;

/** Largest payload accepted: a JSON state or config (pages come in at most PAGES_PER_FRAME pages). */
export const MAX_FRAME = 64 << 20;
/** Pages in one Pages frame at most (1 MiB). */
export const PAGES_PER_FRAME = 256;
const HEADER = 5;
/**
 * Bytes a FrameReader takes in ahead of its reader at most (beyond a frame it waits for): more stays in the socket,
 * so the sender's backpressure says what the reader really went through.
 */
export const READ_AHEAD = 4 << 20;

/** Writes frames (type u8, length u32 LE, payload) with backpressure, hashing them for the End frame. */
export class FrameWriter {
  private readonly hash: Hash = createHash('sha256');
  private hashed = false;
  /** Payload bytes written so far. */
  bytes = 0;

  constructor(private readonly sock: net.Socket) {}

  /** Sends one frame; resolves when the socket takes more (drain). */
  async send(type: number, ...parts: Uint8Array[]): Promise<void> {
    const len = parts.reduce((n, p) => n + p.length, 0);
    const head = Buffer.alloc(HEADER);
    head[0] = type;
    head.writeUInt32LE(len, 1);
    if (type !== FrameType.End && !this.hashed) {
      this.hash.update(head);
      for (const p of parts) this.hash.update(p);
    }
    this.bytes += len;
    let ok = this.sock.write(head);
    for (const p of parts) ok = this.sock.write(p);
    if (!ok && !this.sock.destroyed) await waitDrain(this.sock);
    if (this.sock.destroyed) throw new MigrationError('Io', 'the migration connection closed');
  }

  /** Sends a JSON frame. */
  sendJson(type: number, value: unknown): Promise<void> {
    return this.send(type, Buffer.from(JSON.stringify(value)));
  }

  /** Sends End: the hash of everything sent before (frames after it, the handshake, are not hashed). */
  end(): Promise<void> {
    this.hashed = true;
    return this.send(FrameType.End, this.hash.digest());
  }
}

function waitDrain(sock: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sock.off('drain', done);
      sock.off('close', done);
      resolve();
    };
    sock.once('drain', done);
    sock.once('close', done);
  });
}

/** One frame read. */
export interface Frame {
  type: number;
  payload: Buffer;
}

/**
 * Reads frames from a socket, bounding each by MAX_FRAME, hashing them (End's payload is checked against the hash
 * of the frames before it by `checkEnd`). A stream that stops half-way is an Io error naming it.
 */
export class FrameReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes the reader waits for (a whole frame may be larger than READ_AHEAD). */
  private wanted = 0;
  private ended = false;
  private error?: Error;
  private wake?: () => void;
  private readonly hash: Hash = createHash('sha256');
  private hashed = false;
  /** Payload bytes read so far (frames returned by next()). */
  bytes = 0;

  constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      if (this.buffered > Math.max(READ_AHEAD, this.wanted)) sock.pause();
      this.wake?.();
    });
    sock.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
    sock.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
    sock.on('error', (err) => {
      this.error = err;
      this.wake?.();
    });
  }

  /** The first `n` buffered bytes (n <= buffered), joining only the chunks they span. */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const parts: Buffer[] = [];
      let got = 0;
      while (got < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - got);
        parts.push(k === c.length ? c : c.subarray(0, k));
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
        got += k;
      }
      out = Buffer.concat(parts, n);
    }
    this.buffered -= n;
    if (this.sock.isPaused() && this.buffered <= READ_AHEAD) this.sock.resume();
    return out;
  }

  private async need(n: number, what: string): Promise<void> {
    this.wanted = n;
    while (this.buffered < n) {
      if (this.error) throw new MigrationError('Io', `the migration stream failed in ${what}: ${this.error.message}`);
      if (this.ended) throw new MigrationError('Io', `the migration stream stopped half-way (in ${what})`);
      if (this.sock.isPaused()) this.sock.resume(); // a frame larger than what is read ahead
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
    this.wanted = 0;
  }

  /** The next frame; `signal` aborts the wait. */
  async next(): Promise<Frame> {
    await this.need(HEADER, 'a frame header');
    const head = this.take(HEADER);
    const type = head[0]!;
    const len = head.readUInt32LE(1);
    if (len > MAX_FRAME)
      throw new MigrationError('Format', `a migration frame of ${len} bytes (type ${type}) is too big`);
    await this.need(len, `a frame of type ${type}`);
    const payload = Buffer.from(this.take(len));
    if (type !== FrameType.End && !this.hashed) this.hash.update(head).update(payload);
    this.bytes += len;
    return { type, payload };
  }

  /** Resolves once the other side closed its end (or the connection ended). */
  async closed(): Promise<void> {
    while (!this.ended && !this.error) {
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }

  /** Checks an End frame's payload against the hash of the frames read before it. */
  checkEnd(payload: Buffer): void {
    this.hashed = true;
    if (!payload.equals(this.hash.digest()))
      throw new MigrationError('Format', 'the migration stream checksum does not match (damaged in transit?)');
  }
}

/** Parses a JSON frame, naming it on failure. */
export function jsonOf(f: Frame, what: string): unknown {
  try {
    return JSON.parse(f.payload.toString('utf8')) as unknown;
  } catch {
    throw new MigrationError('Format', `the migration stream's ${what} is not JSON`);
  }
}

/** Throws the reason of an Abort frame, or a Format error when `f` is not of `type`. */
export function expectFrame(f: Frame, type: number, what: string): void {
  if (f.type === FrameType.Abort)
    throw new MigrationError('Cancelled', `the other side gave up: ${f.payload.toString('utf8').slice(0, 500)}`);
  if (f.type !== type)
    throw new MigrationError('Format', `expected ${what} in the migration stream, got frame type ${f.type}`);
}
