import type { HostFile } from './host-file.js';

/** A byte range [start, end) of a disk. */
export type Extent = [start: number, end: number];

/** What an image needs from the file under it: bytes at offsets; past its end reads as zero. */
export interface BackingReader {
  readonly virtualSize: number;
  readAt(offset: number, into: Uint8Array): Promise<void>;
  /**
   * The ranges of [from, to) that may hold data, in order; everything else reads as zeros.
   * Costs what is allocated (table entries, SEEK_DATA), never what the virtual size says.
   */
  allocated(from: number, to: number): AsyncGenerator<Extent>;
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

  /** The file's data extents (SEEK_DATA / SEEK_HOLE); holes and the space past its end read as zeros. */
  async *allocated(from: number, to: number): AsyncGenerator<Extent> {
    yield* this.file.dataExtents(from, Math.min(to, this.file.size));
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
