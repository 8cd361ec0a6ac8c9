/**
 * The host side of the linux tests' networking: a persistent tap the VMM opens as an administrator's tap
 * would be, with the host's address on it, and deterministic bytes to stream through it.
 */
import { execFileSync } from 'node:child_process';
import { c } from '../../core/native/libc.js';
import { TapBackend } from '../../plugins/virtio-net/backends/tap.js';

/** TUNSETPERSIST = _IOW('T', 203, int). */
const TUNSETPERSIST = 0x400454cb;

/**
 * Makes tap `name` persistent (created if absent; multi-queue capable with `queuePairs` > 1), or removes
 * it, so it outlives the file descriptors of one VMM for the next to open.
 */
export function setTapPersist(name: string, on: boolean, queuePairs = 1): void {
  const t = TapBackend.open({ name, create: true, queuePairs });
  try {
    // the fd belongs to `t`, closed below
    if ((c.ioctlInt(t.fd(0), TUNSETPERSIST, on ? 1 : 0) as number) < 0)
      throw new Error(`TUNSETPERSIST ${on} on ${name} failed`);
  } finally {
    t.close();
  }
}

/** Loads the tun module where it is one (best effort: built in, or loaded by the sandbox). */
export function loadTun(): void {
  try {
    execFileSync('modprobe', ['tun'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    /* built in, or loaded by the sandbox */
  }
}

/** Makes tap `name` persistent and up with `hostIp`/24 on it (the guest gets another address there). */
export function upHostTap(name: string, hostIp: string, queuePairs = 1): void {
  setTapPersist(name, true, queuePairs);
  execFileSync('ip', ['link', 'set', 'dev', name, 'up']);
  execFileSync('ip', ['addr', 'replace', `${hostIp}/24`, 'dev', name]);
}

/** Removes the persistent tap (nothing if it is already gone); `queuePairs` as it was made with. */
export function removeHostTap(name: string, queuePairs = 1): void {
  try {
    setTapPersist(name, false, queuePairs);
  } catch {
    /* already gone */
  }
}

/** Deterministic pseudo-random bytes (xorshift32 from `seed`), so the host needs no big buffer twice. */
export function xorshiftBytes(seed: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= len; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}
