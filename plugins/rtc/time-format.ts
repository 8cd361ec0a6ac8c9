import { HOURS_PM, RegB } from './registers.js';

/** A calendar time as the RTC registers hold it (UTC). */
export interface RtcTime {
  year: number;
  /** 1..12 */
  month: number;
  /** 1..31 */
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** Encodes 0..99 as a BCD byte. */
export const toBcd = (v: number): number => ((Math.floor(v / 10) % 10) << 4) | (v % 10);

/** Decodes a BCD byte; undefined when a nibble is not a decimal digit. */
export function fromBcd(b: number): number | undefined {
  const hi = b >> 4,
    lo = b & 0x0f;
  return hi > 9 || lo > 9 ? undefined : hi * 10 + lo;
}

/** The UTC calendar time of `ms` since the epoch, whole seconds. */
export function timeFromMs(ms: number): RtcTime {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  };
}

/** Day of week as the RTC counts it: 1 = Sunday .. 7 = Saturday. */
export const dayOfWeek = (t: RtcTime): number => new Date(Date.UTC(t.year, t.month - 1, t.day)).getUTCDay() + 1;

/** Encodes one value per register B's data mode. */
export const encode = (v: number, regB: number): number => (regB & RegB.DM_BINARY ? v : toBcd(v)) & 0xff;

/** Decodes one register value per register B's data mode; undefined for a bad BCD byte. */
export function decode(b: number, regB: number): number | undefined {
  return regB & RegB.DM_BINARY ? b : fromBcd(b);
}

/** Encodes an hour 0..23 per register B (binary or BCD, 24-hour or 12-hour with the PM bit). */
export function encodeHours(hour: number, regB: number): number {
  if (regB & RegB.HOURS_24) return encode(hour, regB);
  const h12 = hour % 12 === 0 ? 12 : hour % 12;
  return encode(h12, regB) | (hour >= 12 ? HOURS_PM : 0);
}

/** Decodes an hours register to 0..23 per register B; undefined when it is not a valid hour. */
export function decodeHours(b: number, regB: number): number | undefined {
  if (regB & RegB.HOURS_24) return decode(b, regB);
  const h12 = decode(b & ~HOURS_PM, regB);
  if (h12 === undefined || h12 < 1 || h12 > 12) return undefined;
  return (h12 % 12) + (b & HOURS_PM ? 12 : 0);
}

/** Milliseconds since the epoch for a valid time; undefined when a field is out of range (Feb 30 included). */
export function msFromTime(t: RtcTime): number | undefined {
  const ok =
    t.month >= 1 &&
    t.month <= 12 &&
    t.day >= 1 &&
    t.day <= 31 &&
    t.hour >= 0 &&
    t.hour < 24 &&
    t.minute >= 0 &&
    t.minute < 60 &&
    t.second >= 0 &&
    t.second < 60 &&
    t.year >= 1900 &&
    t.year <= 2999;
  if (!ok) return undefined;
  const ms = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
  return new Date(ms).getUTCDate() === t.day ? ms : undefined;
}
