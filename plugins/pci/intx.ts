import type { Disposable } from '../../core/bus/bus.js';
import type { Interrupts, LegacyIrq, TriggerMode } from '../../core/interrupts/interrupts.js';
import type { EventFd } from '../../core/events/event-loop.js';

/** PCI interrupt pins per slot: INTA#..INTD#. */
export const PCI_PINS = 4;

/** The platform line names the bus asks for first (an arch's PlatformLayout names its PCI lines so). */
export const DEFAULT_INTX_LINES: readonly string[] = ['pci-inta', 'pci-intb', 'pci-intc', 'pci-intd'];

/**
 * The bus's INTx lines: a few level lines of the interrupt controller (irqfd with resample where the
 * hypervisor has them), shared by the slots as real boards share them: slot s, pin p (0 = INTA#) reaches
 * line (s + p) % lines (the usual swizzle), which the DSDT's _PRT tells the guest. Each function gets
 * its own LegacyIrq view of its line: the line is asserted while any function on it asserts (without
 * irqfd: their OR; with irqfd the hypervisor drops it at the guest's EOI and every function on the line
 * hears the resample, so a function still needing service asserts again).
 */
export class IntxRouter implements Disposable {
  private readonly views: Set<SharedIntx>[];

  constructor(private readonly lines: readonly LegacyIrq[]) {
    this.views = lines.map(() => new Set());
    lines.forEach((line, i) => line.onResample(() => [...this.views[i]].forEach((v) => v.resampled())));
  }

  /**
   * Takes `count` level lines: the named or numbered `preferred` ones where free, then any free line.
   * A line another device holds is skipped.
   */
  static take(
    interrupts: Interrupts,
    owner: string,
    preferred: readonly (number | string)[],
    count = PCI_PINS,
  ): IntxRouter {
    const lines: LegacyIrq[] = [];
    const take = (line?: number | string): void => {
      try {
        lines.push(interrupts.legacy({ owner, line, mode: 'level', irqfd: true }));
      } catch (err) {
        if (line === undefined) {
          lines.forEach((l) => l.dispose());
          throw err;
        }
      }
    };
    for (const p of preferred) if (lines.length < count) take(p);
    while (lines.length < count) take();
    return new IntxRouter(lines);
  }

  /** The GSI of each line, in swizzle order. */
  get gsis(): readonly number[] {
    return this.lines.map((l) => l.gsi);
  }

  /** The line index slot `slot`'s pin `pin` (1 = INTA#) reaches. */
  lineOf(slot: number, pin: number): number {
    return (slot + pin - 1) % this.lines.length;
  }

  /** A function's view of its pin's line (undefined for pin 0: no INTx). */
  connect(owner: string, slot: number, pin: number): LegacyIrq | undefined {
    if (pin < 1 || pin > PCI_PINS) return undefined;
    const index = this.lineOf(slot, pin);
    const view: SharedIntx = new SharedIntx(
      owner,
      this.lines[index],
      () => this.recompute(index),
      () => this.views[index].delete(view),
    );
    this.views[index].add(view);
    return view;
  }

  private recompute(index: number): void {
    const line = this.lines[index];
    line.setLevel([...this.views[index]].some((v) => v.level));
  }

  dispose(): void {
    for (const l of this.lines) l.dispose();
  }
}

/** One function's share of a bus INTx line. */
class SharedIntx implements LegacyIrq {
  readonly mode: TriggerMode = 'level';
  level = false;
  private readonly listeners = new Set<() => void>();
  private disposed = false;

  constructor(
    readonly owner: string,
    private readonly line: LegacyIrq,
    private readonly changed: () => void,
    private readonly remove: () => void,
  ) {}

  get gsi(): number {
    return this.line.gsi;
  }

  /** Shared: a function never gets the line's eventfd (a write would bypass the other functions' state). */
  get notifier(): EventFd | undefined {
    return undefined;
  }

  trigger(): void {
    this.setLevel(true);
  }

  setLevel(level: boolean): void {
    if (this.disposed) return;
    const was = this.level;
    this.level = level;
    if (level) this.line.setLevel(true);
    else if (was) this.changed();
  }

  onResample(cb: () => void): Disposable {
    this.listeners.add(cb);
    return { dispose: () => this.listeners.delete(cb) };
  }

  /** The guest's EOI dropped the line: listeners re-assert where still pending. */
  resampled(): void {
    for (const cb of [...this.listeners]) cb();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.listeners.clear();
    this.remove();
    if (this.level) this.changed();
    this.level = false;
  }
}
