import * as fs from 'node:fs';
import { VmmError } from '../errors.js';
import { c } from '../native/libc.js';

/** Why an image (or boot) file was refused before any I/O on it. */
export type ImageFileErrorKind = 'NotAFile' | 'Missing' | 'Locked';

/** The error of core/block's file helpers: names the file and what it turned out to be. */
export class ImageFileError extends VmmError<ImageFileErrorKind> {}

/**
 * Added to the flags of every open(2) of an image or boot file: opening a FIFO or a device
 * then returns at once instead of blocking until a writer appears (a blocked open on the main
 * thread or the libuv pool cannot be interrupted, not even by SIGTERM). No effect on regular
 * files; the caller checks the file type right after the open (`requireRegularFile`).
 */
export const OPEN_NONBLOCK = fs.constants.O_NONBLOCK;

const F_GETFL = 3;
const F_SETFL = 4;

/**
 * Turns O_NONBLOCK off again once the file is known to be a regular file or a block device,
 * so no filesystem (FUSE/virtiofs passes open flags on) ever answers EAGAIN to a read or write.
 * SAFETY: plain integer fcntl on an fd the caller owns.
 */
export function clearNonblock(fd: number): void {
  const fl = c.fcntl(fd, F_GETFL, 0) as number;
  if (fl >= 0 && fl & OPEN_NONBLOCK) c.fcntl(fd, F_SETFL, fl & ~OPEN_NONBLOCK);
}

/** A word for what a stat result describes ("a FIFO", "a directory", ...), for messages. */
export function describeFileType(st: fs.Stats | fs.BigIntStats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'not a regular file';
}

/**
 * Refuses anything but a regular file (and a block device when `allowBlockDevice`), with one
 * line naming the file and what it is: `what` says what the file was meant to be ("disk image").
 */
export function requireRegularFile(
  st: fs.Stats | fs.BigIntStats,
  path: string,
  what: string,
  allowBlockDevice = false,
): void {
  if (st.isFile() || (allowBlockDevice && st.isBlockDevice())) return;
  const want = allowBlockDevice ? 'a regular file or a block device' : 'a regular file';
  throw new ImageFileError('NotAFile', `${what} ${path} is ${describeFileType(st)}, not ${want}`, { path });
}

/**
 * Checks a path before anything opens it (stat never blocks on a FIFO): a missing file is refused;
 * other stat errors (e.g. EACCES) pass, the later open reports them. For configs checked at VM
 * assembly, before any file is read.
 */
export function checkRegularPath(path: string, what: string, allowBlockDevice = false): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new ImageFileError('Missing', `${what} ${path} does not exist`, { path });
    return;
  }
  requireRegularFile(st, path, what, allowBlockDevice);
}
