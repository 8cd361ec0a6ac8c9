import type { HostFile } from './host-file.js';

/** What an image needs from the file under it: bytes at offsets; past its end reads as zero. */
export interface BackingReader {
  readonly virtualSize: number;
  readAt(offset: number, into: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** A raw file used as a backing file (read-only). */
export class RawBacking implements BackingReader {
  constructor(private readonly file: HostFile) {}

  get virtualSize(): number {
    return this.file.size;
  }

  readAt(offset: number, into: Uint8Array): Promise<void> {
    return this.file.read(into, offset);
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
