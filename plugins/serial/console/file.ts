import * as fs from 'node:fs';
import { SerialError } from '../errors.js';
import type { DropCounter, SerialConsole, SerialRxPort } from './console.js';
import { OutputBatcher } from './stream-io.js';

/**
 * Appends the guest's output to a file; no input. `maxBytes` caps how much one
 * VM may write (a guest could otherwise fill the host's disk); beyond it output
 * is dropped and counted.
 */
export class FileConsole implements SerialConsole {
  readonly kind = 'file';
  /** Owned by this object from open until close(). */
  private fd: number | undefined;
  private written = 0;
  private readonly out: OutputBatcher;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
    private readonly dropped: DropCounter = () => {},
  ) {
    try {
      this.fd = fs.openSync(path, 'a', 0o600);
    } catch (err) {
      throw new SerialError(
        'Backend',
        `cannot open serial output file ${path}: ${(err as Error).message}`,
        { path },
        { cause: err },
      );
    }
    this.out = new OutputBatcher((bytes) => this.writeOut(bytes));
  }

  transmit(byte: number): void {
    if (this.fd === undefined) {
      this.dropped(1);
      return;
    }
    this.out.push(byte);
  }

  connect(_rx: SerialRxPort): void {}

  close(): void {
    if (this.fd === undefined) return;
    this.out.flush();
    const fd = this.fd;
    this.fd = undefined;
    fs.closeSync(fd);
  }

  private writeOut(bytes: Buffer): void {
    if (this.fd === undefined) {
      this.dropped(bytes.length);
      return;
    }
    const room = Math.max(0, this.maxBytes - this.written);
    const n = Math.min(room, bytes.length);
    if (n < bytes.length) this.dropped(bytes.length - n);
    if (n === 0) return;
    try {
      let off = 0;
      while (off < n) off += fs.writeSync(this.fd, bytes, off, n - off);
      this.written += n;
    } catch {
      this.dropped(n);
    }
  }
}
