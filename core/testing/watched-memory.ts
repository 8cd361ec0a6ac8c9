import type { GuestAddress } from '../address.js';
import type { GuestMemory } from '../memory/guest-memory.js';

/** What a WatchedMemory saw since it was made (or last reset). */
export interface MemoryWatch {
  /** Accesses attempted outside guest memory, as `method(addr, length)` (each should have been range-checked first). */
  readonly outside: string[];
  /** Accesses made (in range or not). */
  accesses: number;
  /** Bytes asked for by those accesses. */
  bytes: number;
  /** Forgets what was seen (reuse one memory across many fuzz cases). */
  reset(): void;
}

const ACCESSORS = new Set([
  'read',
  'readInto',
  'write',
  'fill',
  'slice',
  'slices',
  'readU8',
  'readU16',
  'readU32',
  'readU64',
  'writeU8',
  'writeU16',
  'writeU32',
  'writeU64',
  'readFromFile',
  'writeToFile',
]);
const WIDTH: Record<string, number> = {
  readU8: 1,
  readU16: 2,
  readU32: 4,
  readU64: 8,
  writeU8: 1,
  writeU16: 2,
  writeU32: 4,
  writeU64: 8,
};

function accessLength(method: string, args: unknown[]): number {
  if (WIDTH[method] !== undefined) return WIDTH[method];
  // readFromFile(fd, addr, length) / writeToFile(fd, addr, length); the others (addr, lengthOrBytes)
  const arg = method.endsWith('File') ? args[2] : args[1];
  return arg instanceof Uint8Array ? arg.length : Number(arg);
}

/**
 * Wraps guest memory so every access a device or loader makes is counted and any access outside
 * guest memory is recorded before it is passed on (the inner memory then throws as usual). A device
 * is meant to range-check guest addresses itself, so `outside` should stay empty; `accesses` and
 * `bytes` bound the work one input caused.
 */
export function watchedMemory(inner: GuestMemory): { mem: GuestMemory; watch: MemoryWatch } {
  const watch: MemoryWatch = {
    outside: [],
    accesses: 0,
    bytes: 0,
    reset() {
      this.outside.length = 0;
      this.accesses = 0;
      this.bytes = 0;
    },
  };
  const mem = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      if (typeof prop !== 'string' || !ACCESSORS.has(prop)) return v.bind(target);
      return (...args: unknown[]) => {
        const len = accessLength(prop, args);
        const addr = (prop.endsWith('File') ? args[1] : args[0]) as GuestAddress;
        watch.accesses++;
        watch.bytes += Number.isFinite(len) ? len : 0;
        if (!target.isValidRange(addr, len)) watch.outside.push(`${prop}(${addr}, ${len})`);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { mem, watch };
}
