import * as fs from 'node:fs/promises';
import { constants } from 'node:fs';
import type { DiskBackend, DiskFormat, DiskOpenOptions } from '../../core/block/disk.js';
import { OPEN_NONBLOCK, requireRegularFile } from '../../core/block/regular-file.js';
import { VirtioBlkError } from './errors.js';

const PROBE_BYTES = 4096;

/**
 * Picks the DiskFormat provider for `format`: by name, or for 'auto' the first
 * non-raw format whose probe accepts the file's first bytes, else 'raw'.
 */
export async function pickDiskFormat(
  formats: readonly DiskFormat[],
  format: string,
  path: string,
): Promise<DiskFormat> {
  const byName = (name: string): DiskFormat => {
    const f = formats.find((x) => x.name === name);
    if (!f) {
      const have = formats.map((x) => x.name).join(', ') || 'none';
      throw new VirtioBlkError(
        'Format',
        `no DiskFormat provider named '${name}' for ${path} (have: ${have}); list its plugin (raw-disk, qcow) before virtio-blk`,
        { format: name, have },
      );
    }
    return f;
  };
  if (format !== 'auto') return byName(format);
  const header = new Uint8Array(PROBE_BYTES);
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(path, constants.O_RDONLY | OPEN_NONBLOCK); // a FIFO must not block open()
    requireRegularFile(await fh.stat(), path, 'disk image', true);
    await fh.read(header, 0, PROBE_BYTES, 0);
  } catch (e) {
    const why = (e as Error).name === 'ImageFileError' ? '' : `cannot read ${path} to detect its format: `;
    throw new VirtioBlkError('OpenDisk', `${why}${(e as Error).message}`, { path }, { cause: e });
  } finally {
    await fh?.close();
  }
  return formats.find((f) => f.name !== 'raw' && f.probe(header)) ?? byName('raw');
}

/** Opens a disk through the DiskFormat providers; errors name the file and the format. */
export async function openDisk(
  formats: readonly DiskFormat[],
  format: string,
  opts: DiskOpenOptions,
): Promise<DiskBackend> {
  const f = await pickDiskFormat(formats, format, opts.path);
  try {
    return await f.open(opts);
  } catch (e) {
    throw new VirtioBlkError(
      'OpenDisk',
      `cannot open ${opts.path} as ${f.name}: ${(e as Error).message}`,
      { path: opts.path, format: f.name },
      { cause: e },
    );
  }
}
