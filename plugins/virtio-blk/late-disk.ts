import type { DiskBackend, DiskFormat, DiskOpenOptions, DiskShape } from '../../core/block/disk.js';
import { VirtioBlkError } from './errors.js';
import { openDisk, pickDiskFormat } from './open-disk.js';

const SHAPE_KEYS = ['size', 'readOnly', 'blockSize', 'supportsDiscard', 'supportsWriteZeroes'] as const;

/**
 * A disk whose image is opened later than the device is built: a live migration's destination builds its VM while
 * the source still has the image open and locked. Until `open()` the disk shows the shape its format described
 * (DiskFormat.describe, nothing locked) and refuses I/O, which no one asks for then: the guest's vCPUs do not run
 * before the destination opened its disks. `open()` opens and locks the image as an ordinary attach would, and
 * refuses an image whose shape is not the one described (resized or replaced in between). Afterwards every call
 * goes to the opened disk.
 */
export class LateDisk implements DiskBackend {
  readonly size: bigint;
  readonly readOnly: boolean;
  readonly blockSize: number;
  readonly supportsDiscard: boolean;
  readonly supportsWriteZeroes: boolean;
  private disk?: DiskBackend;
  private closed = false;

  private constructor(
    shape: DiskShape,
    private readonly opener: () => Promise<DiskBackend>,
    private readonly path: string,
  ) {
    this.size = shape.size;
    this.readOnly = shape.readOnly;
    this.blockSize = shape.blockSize;
    this.supportsDiscard = shape.supportsDiscard;
    this.supportsWriteZeroes = shape.supportsWriteZeroes;
  }

  /**
   * The disk of `opts` described now through the format `format` names (or probes), to be opened by `open()`.
   * Refuses a format that cannot describe an image without opening it.
   */
  static async describe(formats: readonly DiskFormat[], format: string, opts: DiskOpenOptions): Promise<LateDisk> {
    const f = await pickDiskFormat(formats, format, opts.path);
    if (!f.describe)
      throw new VirtioBlkError(
        'OpenDisk',
        `${opts.path}: the ${f.name} format cannot describe an image before opening it, so this disk cannot be opened after a migration's source let go of it`,
        { path: opts.path, format: f.name },
      );
    let shape: DiskShape;
    try {
      shape = await f.describe(opts);
    } catch (e) {
      throw new VirtioBlkError(
        'OpenDisk',
        `cannot describe ${opts.path} as ${f.name}: ${(e as Error).message}`,
        { path: opts.path, format: f.name },
        { cause: e },
      );
    }
    return new LateDisk(shape, () => openDisk([f], f.name, opts), opts.path);
  }

  /** Whether open() succeeded (I/O goes to the image). */
  get opened(): boolean {
    return this.disk !== undefined;
  }

  /** Opens and locks the image; an image whose shape changed since it was described is closed again and refused. */
  async open(): Promise<void> {
    if (this.closed) throw new VirtioBlkError('OpenDisk', `${this.path}: the disk was closed before it was opened`);
    if (this.disk) return;
    const disk = await this.opener();
    const changed = SHAPE_KEYS.filter((k) => disk[k] !== this[k]);
    if (changed.length) {
      await disk.close().catch(() => undefined);
      const was = changed.map((k) => `${k} ${String(this[k])} -> ${String(disk[k])}`).join(', ');
      throw new VirtioBlkError('OpenDisk', `${this.path} changed since the device was built (${was})`, {
        path: this.path,
      });
    }
    this.disk = disk;
  }

  private get target(): DiskBackend {
    if (this.disk) return this.disk;
    throw new VirtioBlkError('OpenDisk', `${this.path} is not opened yet (the migration's source still has it)`, {
      path: this.path,
    });
  }

  read(offset: bigint, into: Uint8Array[]): Promise<void> {
    return this.call(() => this.target.read(offset, into));
  }
  write(offset: bigint, from: Uint8Array[]): Promise<void> {
    return this.call(() => this.target.write(offset, from));
  }
  /** Before open() nothing was written through this disk: nothing to make durable. */
  flush(): Promise<void> {
    return this.disk ? this.disk.flush() : Promise.resolve();
  }
  discard(offset: bigint, length: bigint): Promise<void> {
    return this.call(() => this.target.discard(offset, length));
  }
  writeZeroes(offset: bigint, length: bigint, mayUnmap: boolean): Promise<void> {
    return this.call(() => this.target.writeZeroes(offset, length, mayUnmap));
  }
  async close(): Promise<void> {
    this.closed = true;
    await this.disk?.close();
  }

  /** A call that throws (not opened) as a rejected promise, like the disk's own failures. */
  private call(f: () => Promise<void>): Promise<void> {
    try {
      return f();
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
