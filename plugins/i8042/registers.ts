/** i8042 ports, status bits, controller commands and command-byte (CTR) bits, named as in Linux's i8042.h. */
export const DATA_PORT = 0x60;
/** Status (read) and command (write) port. */
export const COMMAND_PORT = 0x64;

/** Status register bits (port 0x64 reads). */
export const Status = {
  /** Output buffer full: a byte waits at port 0x60. */
  OBF: 0x01,
  /** Input buffer full: never set, we take every write at once. */
  IBF: 0x02,
  /** System flag: set once the controller passed its self-test (mirrors CTR bit 2). */
  SYS: 0x04,
  /** Last write went to the command port (1) or the data port (0). */
  CMD: 0x08,
  /** Keyboard not inhibited by the keylock. */
  UNLOCKED: 0x10,
  /** The byte in the output buffer came from the aux (mouse) port. */
  AUXDATA: 0x20,
  TIMEOUT: 0x40,
  PARITY: 0x80,
} as const;

/** Controller command byte (CTR) bits: interrupts, system flag, port disables, translation. */
export const Ctr = { KBDINT: 0x01, AUXINT: 0x02, SYS: 0x04, KBDDIS: 0x10, AUXDIS: 0x20, XLATE: 0x40 } as const;

/** Controller commands written to port 0x64. */
export const Cmd = {
  READ_CTR: 0x20,
  WRITE_CTR: 0x60,
  AUX_DISABLE: 0xa7,
  AUX_ENABLE: 0xa8,
  AUX_TEST: 0xa9,
  SELF_TEST: 0xaa,
  KBD_TEST: 0xab,
  KBD_DISABLE: 0xad,
  KBD_ENABLE: 0xae,
  READ_INPUT: 0xc0,
  READ_OUTPUT: 0xd0,
  WRITE_OUTPUT: 0xd1,
  WRITE_KBD_OUT: 0xd2,
  WRITE_AUX_OUT: 0xd3,
  WRITE_AUX: 0xd4,
  A20_DISABLE: 0xdd,
  A20_ENABLE: 0xdf,
  READ_TEST_INPUTS: 0xe0,
  /** 0xf0-0xff pulse output-port lines low for ~6 µs; bit 0 is the CPU reset line. */
  PULSE_BASE: 0xf0,
  RESET_CPU: 0xfe,
} as const;

/** Commands whose parameter byte the guest writes next to port 0x60. */
export const COMMANDS_WITH_ARG: ReadonlySet<number> = new Set([
  Cmd.WRITE_CTR,
  Cmd.WRITE_OUTPUT,
  Cmd.WRITE_KBD_OUT,
  Cmd.WRITE_AUX_OUT,
  Cmd.WRITE_AUX,
]);

/** Controller self-test (0xAA) answer: passed. */
export const SELF_TEST_OK = 0x55;
/** AUX interface test result "clock line stuck high": what a controller with nothing on its aux port reports. */
export const AUX_TEST_NO_DEVICE = 0x02;

/** Output port: bit 0 = CPU reset line (active low), bit 1 = A20 gate. */
export const OutputPort = { RESET_N: 0x01, A20: 0x02 } as const;

/** AT keyboard replies and commands. */
export const Kbd = {
  ACK: 0xfa,
  RESEND: 0xfe,
  BAT_OK: 0xaa,
  ECHO: 0xee,
  SET_LEDS: 0xed,
  SCANSET: 0xf0,
  GET_ID: 0xf2,
  SET_REP: 0xf3,
  RESET_BAT: 0xff,
  ID: [0xab, 0x83] as const,
} as const;

/** Bytes the controller buffers for the guest before it drops more. */
export const OUTPUT_QUEUE_MAX = 16;
