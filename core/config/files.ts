import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeFileType } from '../block/regular-file.js';
import type { HostFiles } from '../host/host-files.js';

/** How a file named in a config is checked before start: what it is for messages, block devices, writes. */
export interface FileCheck {
  /** What the file is, for messages ('boot file', 'disk image'). */
  readonly what: string;
  /** A block device is accepted too. */
  readonly blockDevice?: boolean;
  /** It must be writable as well as readable. */
  readonly write?: boolean;
}

/**
 * Why the file a config names as `spec` cannot be used, or undefined when it is there, a regular file (or an
 * allowed block device) and readable (and writable when asked). `spec` is a path relative to `baseDir`, an
 * absolute path, or `<scheme>:<name>` that `hostFiles` serves. Nothing is opened (a FIFO is never waited on).
 */
export async function fileProblem(
  spec: string,
  baseDir: string,
  check: FileCheck,
  hostFiles?: HostFiles,
): Promise<string | undefined> {
  let file: string;
  try {
    file = (await hostFiles?.resolve(spec)) ?? (path.isAbsolute(spec) ? spec : path.resolve(baseDir, spec));
  } catch (err) {
    return (err as Error).message;
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? `${check.what} ${file} does not exist`
      : `${check.what} ${file}: cannot stat it (${code})`;
  }
  if (!st.isFile() && !(check.blockDevice && st.isBlockDevice())) {
    const want = check.blockDevice ? 'a regular file or a block device' : 'a regular file';
    return `${check.what} ${file} is ${describeFileType(st)}, not ${want}`;
  }
  try {
    fs.accessSync(file, check.write ? fs.constants.R_OK | fs.constants.W_OK : fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return `${check.what} ${file} is not ${check.write ? 'readable and writable' : 'readable'} by this user (${code})`;
  }
  return undefined;
}
