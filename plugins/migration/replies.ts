import { MigrationError } from './errors.js';
import { expectFrame, FrameType, jsonOf, type Frame, type FrameReader } from './frames.js';

/**
 * The source's side of what the destination says: Ack frames (one per Progress frame the source sent, saying the
 * payload bytes the destination read and wrote by then) are counted as they come; every other frame (Prepared,
 * Ready, Started, Abort) is queued for `next()`. Reads until the connection ends.
 */
export class Replies {
  private readonly queue: Frame[] = [];
  private acked = 0;
  private ackedBytes = 0;
  private failure?: unknown;
  private readonly waiters: (() => void)[] = [];

  constructor(r: FrameReader) {
    void this.pump(r);
  }

  private async pump(r: FrameReader): Promise<void> {
    try {
      for (;;) {
        const f = await r.next();
        if (f.type === FrameType.Ack) {
          const a = jsonOf(f, 'Ack') as { progress?: unknown; bytes?: unknown };
          if (!Number.isSafeInteger(a?.progress) || !Number.isSafeInteger(a?.bytes))
            throw new MigrationError('Format', 'the destination sent an Ack that is not {progress, bytes}');
          this.acked = a.progress as number;
          this.ackedBytes = a.bytes as number;
        } else this.queue.push(f);
        this.wakeAll();
      }
    } catch (err) {
      this.failure = err;
      this.wakeAll();
    }
  }

  private wakeAll(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private wait(): Promise<void> {
    return new Promise<void>((r) => this.waiters.push(r));
  }

  /** The next frame other than an Ack; the connection's failure (or end) once none is left. */
  async next(): Promise<Frame> {
    for (;;) {
      const f = this.queue.shift();
      if (f) return f;
      if (this.failure !== undefined) throw this.failure;
      await this.wait();
    }
  }

  /**
   * Resolves once the destination acked Progress frame number `progress` (1-based) having read `bytes` payload
   * bytes: everything sent before that Progress frame landed there. An Abort (or anything but an Ack) in between
   * means the destination gave up or broke the protocol: thrown.
   */
  async landed(progress: number, bytes: number): Promise<void> {
    for (;;) {
      const f = this.queue.find((x) => x.type !== FrameType.Prepared);
      if (f) expectFrame(f, FrameType.Ack, 'an Ack');
      if (this.acked >= progress) {
        if (this.acked === progress && this.ackedBytes !== bytes)
          throw new MigrationError('Format', `the destination acked ${this.ackedBytes} bytes; ${bytes} were sent`);
        return;
      }
      if (this.failure !== undefined) throw this.failure;
      await this.wait();
    }
  }
}
