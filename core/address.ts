import { VmmError } from './errors.js';

/** The largest guest-physical address, 2^64 - 1 (a bigint): the inclusive upper bound of every address and range. */
export const U64_MAX = (1n << 64n) - 1n;

/**
 * The error class of core/address.ts: 'Invalid' (not an integer in [0, 2^64), or a range length that is not
 * positive), 'Overflow' (arithmetic that would leave [0, 2^64)), 'NotSafeInteger' (an address asked for as a JS
 * number that does not fit 2^53).
 */
export class AddressError extends VmmError<'Invalid' | 'Overflow' | 'NotSafeInteger'> {}

/**
 * A guest-physical address. Always an integer in [0, 2^64); arithmetic that
 * would leave that range throws (or, for `checkedAdd`, returns undefined) —
 * it never wraps and never loses precision above 2^53.
 */
export class GuestAddress {
  private constructor(readonly value: bigint) {}

  static of(v: bigint | number): GuestAddress {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v < 0) {
        throw new AddressError('Invalid', `guest address ${v} is not a non-negative safe integer`, { value: v });
      }
      v = BigInt(v);
    }
    if (v < 0n || v > U64_MAX)
      throw new AddressError('Invalid', `guest address 0x${v.toString(16)} outside [0, 2^64)`, { value: v });
    return new GuestAddress(v);
  }

  /** Returns undefined where `this + n` would pass 2^64 - 1 or go below 0. */
  checkedAdd(n: bigint | number): GuestAddress | undefined {
    const r = this.value + BigInt(n);
    return r < 0n || r > U64_MAX ? undefined : new GuestAddress(r);
  }

  add(n: bigint | number): GuestAddress {
    const r = this.checkedAdd(n);
    if (!r)
      throw new AddressError('Overflow', `0x${this.value.toString(16)} + ${n} overflows the guest address space`, {
        base: this.value,
        offset: n,
      });
    return r;
  }

  /** Offset of this address from `base` (throws when below it). */
  offsetFrom(base: GuestAddress): bigint {
    if (this.value < base.value)
      throw new AddressError('Overflow', `0x${this.value.toString(16)} is below 0x${base.value.toString(16)}`);
    return this.value - base.value;
  }

  /** As a JS number; throws above 2^53 - 1 rather than rounding. */
  toNumber(): number {
    if (this.value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new AddressError('NotSafeInteger', `guest address 0x${this.value.toString(16)} does not fit a JS number`, {
        value: this.value,
      });
    }
    return Number(this.value);
  }

  equals(o: GuestAddress): boolean {
    return this.value === o.value;
  }
  toString(): string {
    return `0x${this.value.toString(16)}`;
  }
}

/** A half-open range [start, start + length) of guest-physical addresses, length > 0, end <= 2^64. */
export class GuestRange {
  private constructor(
    readonly start: GuestAddress,
    readonly length: bigint,
  ) {}

  static of(start: GuestAddress | bigint | number, length: bigint | number): GuestRange {
    const s = start instanceof GuestAddress ? start : GuestAddress.of(start);
    const len = BigInt(length);
    if (len <= 0n)
      throw new AddressError('Invalid', `range length ${len} must be positive`, { start: s.value, length: len });
    if (s.value + len - 1n > U64_MAX) {
      throw new AddressError('Overflow', `range ${s} + ${len} passes the end of the 64-bit address space`, {
        start: s.value,
        length: len,
      });
    }
    return new GuestRange(s, len);
  }

  /** Exclusive end as a bigint (may equal 2^64). */
  get end(): bigint {
    return this.start.value + this.length;
  }
  /** Inclusive last address. */
  get last(): GuestAddress {
    return GuestAddress.of(this.end - 1n);
  }

  contains(a: GuestAddress | bigint, length: bigint | number = 1): boolean {
    const v = a instanceof GuestAddress ? a.value : a;
    const len = BigInt(length);
    return v >= this.start.value && len >= 0n && v + len <= this.end;
  }

  overlaps(o: GuestRange): boolean {
    return this.start.value < o.end && o.start.value < this.end;
  }
  toString(): string {
    return `[${this.start}, 0x${this.end.toString(16)})`;
  }
}
