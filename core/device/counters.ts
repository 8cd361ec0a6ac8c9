import { hasCounters, type DeviceRegistry } from './device.js';

/** Counters of every device that has them, by device id; a device whose counters() throws is left out. */
export type DeviceCounters = Record<string, Record<string, number>>;

/**
 * Reads every Countable device of the registry (contract C4): non-finite values are dropped and fractions truncated,
 * so the result is what Cloud Hypervisor's VmCounters promises (integers). `onError` hears about a device that threw.
 */
export function collectCounters(
  registry: DeviceRegistry,
  onError?: (deviceId: string, err: unknown) => void,
): DeviceCounters {
  const out: DeviceCounters = {};
  for (const d of registry.all()) {
    if (!hasCounters(d)) continue;
    try {
      out[d.id] = integerCounters(d.counters());
    } catch (err) {
      onError?.(d.id, err);
    }
  }
  return out;
}

/** The finite entries of a counter map, truncated to integers. */
export function integerCounters(c: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(c)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = Math.trunc(v);
  return out;
}

/** Prefixes every name of a counter map (`prefixCounters('transport', {a: 1})` -> `{'transport.a': 1}`). */
export function prefixCounters(prefix: string, c: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(c)) out[`${prefix}.${k}`] = v;
  return out;
}
