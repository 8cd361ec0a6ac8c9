/**
 * A disk image as virtio-blk (or any block device model) consumes it. Offsets and
 * lengths are bytes; implementations range-check them against `size` and reject
 * writes when read-only. I/O is asynchronous so the main loop never blocks.
 * Backends: raw files (plugins/virtio-blk), qcow2 (plugins/qcow), test doubles.
 */
export interface DiskBackend {
  readonly size: bigint;
  readonly readOnly: boolean;
  /** Logical block size the backend prefers (512 unless the image says otherwise). */
  readonly blockSize: number;
  readonly supportsDiscard: boolean;
  readonly supportsWriteZeroes: boolean;
  /**
   * Reads into the buffers in order, starting at `offset`. Bytes past the data read as zero where the format
   * says so.
   */
  read(offset: bigint, into: Uint8Array[]): Promise<void>;
  write(offset: bigint, from: Uint8Array[]): Promise<void>;
  /** Data and metadata written so far are durable when this resolves. */
  flush(): Promise<void>;
  discard(offset: bigint, length: bigint): Promise<void>;
  writeZeroes(offset: bigint, length: bigint, mayUnmap: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * How a DiskFormat opens an image: `path` (resolved by the caller), `readOnly` (writes refused, the image locked
 * for shared reading instead of exclusive writing), `direct` (O_DIRECT, bypassing the host page cache: the raw
 * format honours it, qcow2 ignores it).
 */
export interface DiskOpenOptions {
  path: string;
  readOnly: boolean;
  direct?: boolean;
  /** For formats with backing files: may the image name another file to read from? */
  allowBacking?: boolean;
}

/** What a block device model shows its guest of a disk: what `open` with the same options would give. */
export type DiskShape = Pick<
  DiskBackend,
  'size' | 'readOnly' | 'blockSize' | 'supportsDiscard' | 'supportsWriteZeroes'
>;

/** A disk format (raw, qcow2, ...). Providers of the DiskFormat token (several allowed). */
export interface DiskFormat {
  readonly name: string;
  /** True when the first bytes of a file look like this format. */
  probe(header: Uint8Array): boolean;
  open(opts: DiskOpenOptions): Promise<DiskBackend>;
  /**
   * Optional: the shape `open(opts)` would give, read without taking the image's lock or changing the file, for a
   * disk another process still writes (a live migration's destination builds its device before the source let go,
   * and opens the image only then). Formats without it cannot be opened late.
   */
  describe?(opts: DiskOpenOptions): Promise<DiskShape>;
}
