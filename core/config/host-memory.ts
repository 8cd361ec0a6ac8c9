import * as fs from 'node:fs';
import * as os from 'node:os';

/** What the host can give a guest's RAM: physical memory, swap, and a cgroup v2 limit when one applies. */
export interface HostMemory {
  readonly ram: bigint;
  readonly swap: bigint;
  /** memory.max (+ memory.swap.max) of this process's cgroup v2, when set. */
  readonly cgroupLimit?: bigint;
}

const meminfoKiB = (text: string, key: string): bigint | undefined => {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? BigInt(m[1]) * 1024n : undefined;
};

const readNumber = (file: string): bigint | undefined => {
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(t) ? BigInt(t) : undefined; // 'max' means no limit
  } catch {
    return undefined;
  }
};

/** Reads /proc/meminfo (MemTotal, SwapTotal) and this process's cgroup v2 memory limits. */
export function readHostMemory(): HostMemory {
  let info = '';
  try {
    info = fs.readFileSync('/proc/meminfo', 'utf8');
  } catch {
    /* not Linux: os.totalmem() below */
  }
  const ram = meminfoKiB(info, 'MemTotal') ?? BigInt(os.totalmem());
  const swap = meminfoKiB(info, 'SwapTotal') ?? 0n;
  let cgroupLimit: bigint | undefined;
  try {
    const line = fs
      .readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    if (line) {
      const dir = `/sys/fs/cgroup${line.slice(3)}`;
      const max = readNumber(`${dir}/memory.max`);
      if (max !== undefined) cgroupLimit = max + (readNumber(`${dir}/memory.swap.max`) ?? 0n);
    }
  } catch {
    /* no cgroup v2 */
  }
  return { ram, swap, cgroupLimit };
}

const gib = (b: bigint): string => `${(Number(b) / 2 ** 30).toFixed(1)} GiB`;

/**
 * Why `memory` bytes of guest RAM should be refused on this host, or undefined.
 * The rule: at most the host's RAM + swap (and the cgroup limit, if lower) unless the
 * config sets `machine.overcommit: true`. Guest RAM is mapped MAP_NORESERVE and touched
 * lazily, so a larger guest starts, and fails later: the OOM killer ends the VMM once the
 * guest touches more than the host has. QEMU and Firecracker accept such sizes too; a user
 * who means it (a guest that uses little of its RAM, balloons, KSM, a host whose memory is
 * shared by many small guests) says so with `overcommit`, everyone else learns it before boot.
 */
export function memoryRefusal(memory: bigint, overcommit: boolean, host: HostMemory): string | undefined {
  if (overcommit) return undefined;
  const hostMax = host.ram + host.swap;
  const limit = host.cgroupLimit !== undefined && host.cgroupLimit < hostMax ? host.cgroupLimit : hostMax;
  if (memory <= limit) return undefined;
  const what =
    limit === hostMax
      ? `this host's RAM + swap (${gib(host.ram)} + ${gib(host.swap)})`
      : `this process's cgroup memory limit (${gib(limit)})`;
  return (
    `${gib(memory)} is more than ${what}: the guest would be killed once it uses it; ` +
    'lower it, or set machine.overcommit: true to allow it'
  );
}
