/** Where the RTC gets host time: milliseconds since the Unix epoch, with sub-millisecond precision. */
export interface RtcClock {
  nowMs(): number;
}

/** The host's wall clock at microsecond resolution (Date.now() alone is whole milliseconds). */
export const hostClock: RtcClock = {
  nowMs: () => performance.timeOrigin + performance.now(),
};
