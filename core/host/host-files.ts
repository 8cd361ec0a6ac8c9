import type { Disposable } from '../bus/bus.js';
import { VmmError } from '../errors.js';

/** Resolves the name after `<scheme>:` to a local file path (guestkit: 'vmlinux' -> the cached kernel). */
export type HostFileResolver = (name: string, spec: string) => Promise<string>;

/**
 * Files a host names by scheme in a VM config (`boot.kernel: guestkit:vmlinux`). Hosts register the
 * schemes they serve (hosts/cli registers `guestkit`, the project's guest kit); plugins resolve such
 * names through the `HostFiles` token and never import hosts/.
 */
export interface HostFiles {
  /** The local path for `spec` when it is `<scheme>:<name>` with a registered scheme, else undefined (a path). */
  resolve(spec: string): Promise<string | undefined>;
}

/** A scheme's resolver failed (unknown name, kit not available). */
export class HostFileError extends VmmError<'Resolve'> {}

const SCHEME = /^([a-z][a-z0-9+.-]*):(.*)$/;
const schemes = new Map<string, HostFileResolver>();

/**
 * Registers `scheme` for every VM this process assembles (a host does it once at start-up); the
 * Disposable removes it again. A second registration of the same scheme replaces the first.
 */
export function registerHostFileScheme(scheme: string, resolver: HostFileResolver): Disposable {
  if (!/^[a-z][a-z0-9+.-]*$/.test(scheme)) throw new TypeError(`invalid host file scheme '${scheme}'`);
  schemes.set(scheme, resolver);
  return { dispose: () => void (schemes.get(scheme) === resolver && schemes.delete(scheme)) };
}

/** HostFiles over the schemes registered in this process (the kernel provides it as `Tokens.HostFiles`). */
export class RegisteredHostFiles implements HostFiles {
  async resolve(spec: string): Promise<string | undefined> {
    const m = SCHEME.exec(spec);
    const resolver = m && schemes.get(m[1]);
    if (!m || !resolver) return undefined;
    try {
      return await resolver(m[2], spec);
    } catch (err) {
      throw new HostFileError(
        'Resolve',
        `cannot get '${spec}': ${(err as Error)?.message ?? String(err)}`,
        { spec },
        { cause: err },
      );
    }
  }
}
