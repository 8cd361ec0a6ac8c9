import type { BusDevice } from '../../../core/bus/bus.js';
import { PM1_CNT_LEN, PM1_CNT_PORT, PM1_EVT_LEN, PM1_EVT_PORT, S5_SLP_TYP } from './acpi.js';

/** PM1 control bits (ACPI 6, 4.8.3.2.1). */
export const PM1_CNT = { SCI_EN: 1 << 0, SLP_TYP_SHIFT: 10, SLP_TYP_MASK: 0x7 << 10, SLP_EN: 1 << 13 } as const;
/** PM1 status/enable bits (ACPI 6, 4.8.3.1): the fixed-feature power button. */
export const PM1_EVT = { PWRBTN: 1 << 8 } as const;
/** The ports the FADT's PM1a blocks name, as one range: status(2) enable(2) control(2). */
export const PM1_BASE = PM1_EVT_PORT;
/** Bytes from the first PM1 port to the last: the one bus range the PM1 registers take. */
export const PM1_SIZE = PM1_CNT_PORT + PM1_CNT_LEN - PM1_EVT_PORT;

/** The PM1 registers as saved: status, enable and control words. */
export interface Pm1State {
  status: number;
  enable: number;
  control: number;
}

/**
 * The ACPI PM1a event and control registers the FADT points at. The only event is the fixed-feature power
 * button (PWRBTN_STS, bit 8 of the status register, write-1-to-clear; PWRBTN_EN in the enable register),
 * pressed by pressPowerButton(); `onSci` is told whenever status & enable changes between zero and non-zero,
 * which is the SCI's level. The control register always has SCI_EN (the platform is in ACPI mode). Writing
 * SLP_EN with the SLP_TYP of \_S5 is Linux's ACPI poweroff: `onPowerOff` is called (once).
 */
export class Pm1Registers {
  private status = 0;
  private enable = 0;
  private control: number = PM1_CNT.SCI_EN;
  private poweredOff = false;
  private sciLevel = false;
  /** Writes seen with SLP_EN and another SLP_TYP (sleep states we do not offer). */
  ignoredSleeps = 0;

  constructor(
    private readonly onPowerOff: () => void,
    private readonly onSci: (level: boolean) => void = () => {},
  ) {
    if (PM1_EVT_LEN !== 4 || PM1_CNT_PORT !== PM1_EVT_PORT + PM1_EVT_LEN)
      throw new RangeError('PM1 blocks must be contiguous');
  }

  /**
   * Presses the power button: sets PWRBTN_STS and raises the SCI when the guest enabled the event. Returns
   * whether it did (false: the guest has not enabled the button, nobody listens).
   */
  pressPowerButton(): boolean {
    this.status |= PM1_EVT.PWRBTN;
    this.updateSci();
    return (this.enable & PM1_EVT.PWRBTN) !== 0;
  }

  /** The whole register file as bytes (status, enable, control), little endian. */
  private bytes(): Uint8Array {
    const { status, enable, control } = this;
    return Uint8Array.of(status & 0xff, status >> 8, enable & 0xff, enable >> 8, control & 0xff, control >> 8);
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
      let clear = 0;
      for (let i = 0; i < data.length; i++) {
        const o = Number(offset) + i;
        if (o === 0 || o === 1)
          clear |= data[i] << (8 * o); // status: write 1 to clear
        else if (o >= 2 && o < regs.length) regs[o] = data[i];
      }
      this.status &= ~clear;
      this.enable = regs[2] | (regs[3] << 8); // kept as written; only PWRBTN ever has a status bit
      this.updateSci();
      const control = regs[4] | (regs[5] << 8);
      this.control = (control & ~PM1_CNT.SLP_EN) | PM1_CNT.SCI_EN;
      if (control & PM1_CNT.SLP_EN) this.sleep((control & PM1_CNT.SLP_TYP_MASK) >> PM1_CNT.SLP_TYP_SHIFT);
    },
  };

  /** The registers as a snapshot keeps them (status, enable, control). */
  save(): Pm1State {
    return { status: this.status, enable: this.enable, control: this.control };
  }

  /**
   * Loads saved registers (a restore): the guest's enabled events stay enabled. The SCI's level is taken as it was
   * (the interrupt controller's saved state holds whether it was delivered), nothing is raised.
   */
  load(s: Pm1State): void {
    this.status = s.status & PM1_EVT.PWRBTN;
    this.enable = s.enable;
    this.control = (s.control & ~PM1_CNT.SLP_EN) | PM1_CNT.SCI_EN;
    this.sciLevel = (this.status & this.enable) !== 0;
  }

  private updateSci(): void {
    const level = (this.status & this.enable) !== 0;
    if (level === this.sciLevel) return;
    this.sciLevel = level;
    this.onSci(level);
  }

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
