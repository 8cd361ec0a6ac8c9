import type { BusDevice } from '../../../core/bus/bus.js';
import { PM1_CNT_LEN, PM1_CNT_PORT, PM1_EVT_LEN, PM1_EVT_PORT, S5_SLP_TYP } from './acpi.js';

/** PM1 control bits (ACPI 6, 4.8.3.2.1). */
export const PM1_CNT = { SCI_EN: 1 << 0, SLP_TYP_SHIFT: 10, SLP_TYP_MASK: 0x7 << 10, SLP_EN: 1 << 13 } as const;
/** The ports the FADT's PM1a blocks name, as one range: status(2) enable(2) control(2). */
export const PM1_BASE = PM1_EVT_PORT;
/** Bytes from the first PM1 port to the last: the one bus range the PM1 registers take. */
export const PM1_SIZE = PM1_CNT_PORT + PM1_CNT_LEN - PM1_EVT_PORT;

/**
 * The ACPI PM1a event and control registers the FADT points at. No event ever fires
 * (status reads 0), the enable register keeps what the guest wrote, and the control
 * register always has SCI_EN (the platform is in ACPI mode). Writing SLP_EN with the
 * SLP_TYP of \_S5 is Linux's ACPI poweroff: `onPowerOff` is called (once).
 */
export class Pm1Registers {
  private enable = 0;
  private control: number = PM1_CNT.SCI_EN;
  private poweredOff = false;
  /** Writes seen with SLP_EN and another SLP_TYP (sleep states we do not offer). */
  ignoredSleeps = 0;

  constructor(private readonly onPowerOff: () => void) {
    if (PM1_EVT_LEN !== 4 || PM1_CNT_PORT !== PM1_EVT_PORT + PM1_EVT_LEN)
      throw new RangeError('PM1 blocks must be contiguous');
  }

  /** The whole register file as bytes (status, enable, control), little endian. */
  private bytes(): Uint8Array {
    return Uint8Array.of(0, 0, this.enable & 0xff, this.enable >> 8, this.control & 0xff, this.control >> 8);
  }

  readonly bus: BusDevice = {
    read: (offset, data) => {
      const regs = this.bytes();
      for (let i = 0; i < data.length; i++) {
        const o = Number(offset) + i;
        data[i] = o >= 0 && o < regs.length ? regs[o] : 0xff;
      }
    },
    write: (offset, data) => {
      const regs = this.bytes();
      for (let i = 0; i < data.length; i++) {
        const o = Number(offset) + i;
        if (o >= 2 && o < regs.length) regs[o] = data[i]; // status is write-1-to-clear: nothing to clear
      }
      this.enable = regs[2] | (regs[3] << 8);
      const control = regs[4] | (regs[5] << 8);
      this.control = (control & ~PM1_CNT.SLP_EN) | PM1_CNT.SCI_EN;
      if (control & PM1_CNT.SLP_EN) this.sleep((control & PM1_CNT.SLP_TYP_MASK) >> PM1_CNT.SLP_TYP_SHIFT);
    },
  };

  private sleep(type: number): void {
    if (type !== S5_SLP_TYP) {
      this.ignoredSleeps++;
      return;
    }
    if (this.poweredOff) return;
    this.poweredOff = true;
    this.onPowerOff();
  }
}
