/** 16550A register offsets (from the port base) and bits, as the 8250 datasheet and Linux's serial_reg.h name them. */
export const Reg = {
  /** Read: receive buffer (RBR); write: transmit holding (THR); DLL when LCR.DLAB. */
  DATA: 0,
  /** Interrupt enable (IER); DLM when LCR.DLAB. */
  IER: 1,
  /** Read: interrupt identification (IIR); write: FIFO control (FCR). */
  IIR_FCR: 2,
  LCR: 3,
  MCR: 4,
  LSR: 5,
  MSR: 6,
  SCR: 7,
} as const;

/** Ports a 16550A occupies (base .. base + 7). */
export const REGISTER_COUNT = 8;

/** Interrupt enable register bits. */
export const Ier = { RDI: 0x01, THRI: 0x02, RLSI: 0x04, MSI: 0x08, MASK: 0x0f } as const;

/** IIR interrupt ids, highest priority first; bit 0 set means none pending. */
export const Iir = {
  NO_INT: 0x01,
  RLSI: 0x06,
  RDI: 0x04,
  RX_TIMEOUT: 0x0c,
  THRI: 0x02,
  MSI: 0x00,
  /** Bits 6-7 both set: FIFOs enabled on a 16550A (a 16550 without the A reads 10). */
  FIFO_ENABLED: 0xc0,
} as const;

/** FIFO control register bits. */
export const Fcr = { ENABLE: 0x01, CLEAR_RX: 0x02, CLEAR_TX: 0x04, TRIGGER_MASK: 0xc0 } as const;
/** RX trigger levels of a 16-byte 16550A FIFO, by FCR bits 6-7. */
export const RX_TRIGGER = [1, 4, 8, 14] as const;

/** Line control register: the divisor latch access bit. */
export const Lcr = { DLAB: 0x80 } as const;

/** Modem control register bits (OUT2 gates the interrupt on a PC; LOOP is loopback). */
export const Mcr = { DTR: 0x01, RTS: 0x02, OUT1: 0x04, OUT2: 0x08, LOOP: 0x10, MASK: 0x1f } as const;

/** Line status register bits. */
export const Lsr = { DR: 0x01, OE: 0x02, PE: 0x04, FE: 0x08, BI: 0x10, THRE: 0x20, TEMT: 0x40, FIFOE: 0x80 } as const;
/** LSR bits that raise a receiver line status interrupt. */
export const LSR_ERRORS = Lsr.OE | Lsr.PE | Lsr.FE | Lsr.BI;

/** Modem status register bits (deltas in the low nibble, lines in the high one). */
export const Msr = {
  DCTS: 0x01,
  DDSR: 0x02,
  TERI: 0x04,
  DDCD: 0x08,
  CTS: 0x10,
  DSR: 0x20,
  RI: 0x40,
  DCD: 0x80,
  DELTA: 0x0f,
} as const;

/** Power-on divisor: 115200 / 12 = 9600 baud. */
export const DEFAULT_DIVISOR = 12;
