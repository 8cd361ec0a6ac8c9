import type { BusDevice } from '../../core/bus/bus.js';
import type { RtcClock } from './clock.js';
import { Reg, RegA } from './registers.js';

/** A clock a test moves by hand (milliseconds since the epoch, fractional allowed). */
export class ManualClock implements RtcClock {
  constructor(public ms: number) {}
  nowMs(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/**
 * The guest side of the CMOS ports. `costMs` is added to an optional clock per
 * port access, to model what each PIO exit costs when simulating read loops.
 */
export class CmosDriver {
  accesses = 0;
  constructor(
    private readonly dev: BusDevice,
    private readonly clock?: ManualClock,
    private readonly costMs = 0,
  ) {}

  private tick(): void {
    this.accesses++;
    this.clock?.advance(this.costMs);
  }

  read(index: number): number {
    this.dev.write(0n, Uint8Array.of(index));
    this.tick();
    const d = new Uint8Array(1);
    this.dev.read(1n, d);
    this.tick();
    return d[0];
  }

  write(index: number, value: number): void {
    this.dev.write(0n, Uint8Array.of(index));
    this.tick();
    this.dev.write(1n, Uint8Array.of(value));
    this.tick();
  }

  /**
   * Linux's mc146818_get_time(): read the seconds, retry (after udelay(100)) while
   * UIP is set, read all fields, retry if UIP rose or the seconds changed meanwhile.
   * Returns the raw registers and how many attempts it took.
   */
  linuxGetTime(maxAttempts = 1000): { attempts: number; regs: Record<string, number> } {
    for (let attempts = 1; attempts <= maxAttempts; attempts++) {
      const seconds = this.read(Reg.SECONDS);
      if (this.read(Reg.A) & RegA.UIP) {
        this.clock?.advance(0.1);
        continue;
      }
      const regs = {
        seconds: this.read(Reg.SECONDS),
        minutes: this.read(Reg.MINUTES),
        hours: this.read(Reg.HOURS),
        day: this.read(Reg.DAY_OF_MONTH),
        month: this.read(Reg.MONTH),
        year: this.read(Reg.YEAR),
        century: this.read(Reg.CENTURY),
        b: this.read(Reg.B),
      };
      if (this.read(Reg.A) & RegA.UIP || seconds !== regs.seconds) continue;
      return { attempts, regs };
    }
    throw new Error(`RTC read did not settle after ${maxAttempts} attempts`);
  }
}
