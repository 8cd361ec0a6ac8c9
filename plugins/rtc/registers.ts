/** MC146818 CMOS RTC ports, register indexes and bits (Linux's mc146818rtc.h names). */
export const INDEX_PORT = 0x70;
/** Data port: reads and writes the CMOS byte port 0x70 selected. */
export const DATA_PORT = 0x71;
/** Port 0x70 bit 7 masks NMIs on a PC; bits 0-6 select one of 128 CMOS bytes. */
export const NMI_DISABLE = 0x80;
/** The index bits of a port 0x70 write. */
export const INDEX_MASK = 0x7f;
/** Bytes of CMOS (clock registers plus NVRAM). */
export const CMOS_SIZE = 128;

/** CMOS indexes of the clock and status registers. */
export const Reg = {
  SECONDS: 0x00,
  SECONDS_ALARM: 0x01,
  MINUTES: 0x02,
  MINUTES_ALARM: 0x03,
  HOURS: 0x04,
  HOURS_ALARM: 0x05,
  DAY_OF_WEEK: 0x06,
  DAY_OF_MONTH: 0x07,
  MONTH: 0x08,
  YEAR: 0x09,
  A: 0x0a,
  B: 0x0b,
  C: 0x0c,
  D: 0x0d,
  /** IBM PC/AT century byte (ACPI FADT's default century index). */
  CENTURY: 0x32,
} as const;

/** Registers whose contents the clock computes (not plain NVRAM). */
export const TIME_REGS: readonly number[] = [
  Reg.SECONDS,
  Reg.MINUTES,
  Reg.HOURS,
  Reg.DAY_OF_WEEK,
  Reg.DAY_OF_MONTH,
  Reg.MONTH,
  Reg.YEAR,
  Reg.CENTURY,
];

/** Register A bits and the power-on value. */
export const RegA = {
  /** Update in progress: the time registers are about to change. Read-only. */
  UIP: 0x80,
  /** 32.768 kHz time base, 1024 Hz periodic rate: what a BIOS leaves. */
  DEFAULT: 0x26,
} as const;

/** Register B bits: update halt, interrupt enables, data mode, 24-hour mode. */
export const RegB = {
  /** Halt updates so the guest can write the time. */
  SET: 0x80,
  PIE: 0x40,
  AIE: 0x20,
  UIE: 0x10,
  SQWE: 0x08,
  /** 1 = binary, 0 = BCD. */
  DM_BINARY: 0x04,
  /** 1 = 24-hour mode, 0 = 12-hour with bit 7 of the hours as PM. */
  HOURS_24: 0x02,
  DSE: 0x01,
  DEFAULT: 0x02,
} as const;

/** Register D bit 7: the battery is good and the RAM and time are valid. */
export const REG_D_VRT = 0x80;
/** Hours register bit 7 in 12-hour mode: PM. */
export const HOURS_PM = 0x80;

/** UIP is raised this long before each second's update (8 periods of 32.768 kHz ≈ 244 µs). */
export const UIP_WINDOW_MS = 8_000 / 32_768;
