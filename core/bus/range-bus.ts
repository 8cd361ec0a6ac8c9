import { GuestAddress, GuestRange } from '../address.js';
import type { Logger } from '../logger.js';
import { LogRateLimiter, suppressedNote } from '../ratelimit/log-limiter.js';
import type { AddressSpace, Bus, BusDevice, BusRegistration, Disposable } from './bus.js';
import { BusError } from './errors.js';

/**
 * Told about every exception a device throws during an access (after the bus answered a read with 0xff bytes and logged
 * a rate-limited warning): the error, and where the access went. Register with RangeBus.onDeviceError.
 */
export type BusErrorHandler = (
  err: unknown,
  info: { space: AddressSpace; addr: bigint; name: string; isWrite: boolean },
) => void;

const toBig = (a: GuestAddress | bigint): bigint => (typeof a === 'bigint' ? a : a.value);

/**
 * PIO and MMIO buses as sorted, non-overlapping range lists with binary-search dispatch.
 * An access must lie entirely inside one registered range to reach its device; otherwise it
 * is unclaimed (reads return all ones). A device that throws is contained: the error is
 * counted, logged (a warning, rate-limited per device) and passed to the error handlers;
 * a failed read returns all ones.
 */
export class RangeBus implements Bus {
  private readonly spaces: Record<AddressSpace, BusRegistration[]> = { pio: [], mmio: [] };
  readonly unclaimed = { pio: 0, mmio: 0 };
  /** Count of accesses during which a device threw. */
  readonly deviceErrors = { pio: 0, mmio: 0 };
  private readonly handlers = new Set<BusErrorHandler>();

  private readonly logLimit: LogRateLimiter;

  constructor(
    private readonly logger?: Logger,
    logLimit?: LogRateLimiter,
  ) {
    this.logLimit = logLimit ?? new LogRateLimiter();
  }

  register(space: AddressSpace, range: GuestRange, device: BusDevice, name: string): Disposable {
    if (space === 'pio' && range.end > 0x10000n) {
      throw new BusError('InvalidAccess', `${name}: PIO range ${range} is beyond port 0xffff`, {
        name,
        range: range.toString(),
      });
    }
    const list = this.spaces[space];
    const i = this.insertionIndex(list, range.start.value);
    for (const j of [i - 1, i]) {
      const other = list[j];
      if (other && other.range.overlaps(range)) {
        throw new BusError(
          'Overlap',
          `${space} range ${range} of '${name}' overlaps ${other.range} of '${other.name}'`,
          { space, name, range: range.toString(), other: other.name, otherRange: other.range.toString() },
        );
      }
    }
    const reg: BusRegistration = Object.freeze({ space, range, device, name });
    list.splice(i, 0, reg);
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        const k = this.spaces[space].indexOf(reg);
        if (k >= 0) this.spaces[space].splice(k, 1);
      },
    };
  }

  unregister(space: AddressSpace, range: GuestRange): void {
    const list = this.spaces[space];
    const k = list.findIndex((r) => r.range.start.value === range.start.value && r.range.length === range.length);
    if (k < 0)
      throw new BusError('NotRegistered', `no ${space} device is registered at ${range}`, {
        space,
        range: range.toString(),
      });
    list.splice(k, 1);
  }

  private insertionIndex(list: BusRegistration[], start: bigint): number {
    let lo = 0,
      hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].range.start.value < start) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  find(space: AddressSpace, addr: GuestAddress | bigint): BusRegistration | undefined {
    const a = toBig(addr);
    const list = this.spaces[space];
    let lo = 0,
      hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = list[mid].range;
      if (a < r.start.value) hi = mid - 1;
      else if (a >= r.end) lo = mid + 1;
      else return list[mid];
    }
    return undefined;
  }

  read(space: AddressSpace, addr: GuestAddress | bigint, data: Uint8Array): boolean {
    return this.access(space, toBig(addr), data, false);
  }

  write(space: AddressSpace, addr: GuestAddress | bigint, data: Uint8Array): boolean {
    return this.access(space, toBig(addr), data, true);
  }

  private access(space: AddressSpace, a: bigint, data: Uint8Array, isWrite: boolean): boolean {
    const reg = this.find(space, a);
    if (!reg || !reg.range.contains(a, data.length)) {
      this.unclaimed[space]++;
      if (!isWrite) data.fill(0xff);
      return false;
    }
    try {
      if (isWrite) reg.device.write(a - reg.range.start.value, data);
      else reg.device.read(a - reg.range.start.value, data);
    } catch (err) {
      this.deviceErrors[space]++;
      if (!isWrite) data.fill(0xff);
      const info = { space, addr: a, name: reg.name, isWrite };
      // A guest can make a device fail on every access: warn, rate-limited per device.
      this.logLimit.log(`${space}:${reg.name}`, (suppressed) =>
        this.logger?.warn(
          { err, ...info, addr: `0x${a.toString(16)}`, suppressed },
          `device '${reg.name}' failed a ${space} ${isWrite ? 'write' : 'read'}${suppressedNote(suppressed)}`,
        ),
      );
      for (const h of this.handlers) {
        try {
          h(err, info);
        } catch {
          /* a broken handler must not break dispatch */
        }
      }
    }
    return true;
  }

  registrations(space?: AddressSpace): readonly BusRegistration[] {
    return space ? [...this.spaces[space]] : [...this.spaces.pio, ...this.spaces.mmio];
  }

  /** Called whenever a device throws during an access. */
  onDeviceError(handler: BusErrorHandler): Disposable {
    this.handlers.add(handler);
    return {
      dispose: () => {
        this.handlers.delete(handler);
      },
    };
  }
}
