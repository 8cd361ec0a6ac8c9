import type { Machine } from '../../core/machine.js';

/** QEMU's auto-converge steps: the first share of each period the vCPUs are held, the step up, the most. */
const FIRST = 20;
const STEP = 10;
const MOST = 90;

/**
 * Auto-converge for a pre-copy that does not converge (the guest dirties pages faster than they go out): holds the
 * vCPUs (Machine.pause, resume) for a share of every period, so the guest writes less per round, as QEMU's
 * auto-converge does. The share starts at 20 % and goes up 10 % per `step()`, to 90 %. While it runs the VM is
 * 'paused' part of the time (its lifecycle says so). `stop()` ends it with the vCPUs running again.
 */
export class VcpuThrottle {
  private share = 0;
  private loop?: Promise<void>;
  private stopping = false;
  private wake?: () => void;

  constructor(
    private readonly machine: Pick<Machine, 'pause' | 'resume'>,
    private readonly periodMs = 100,
  ) {}

  /** The share of each period the vCPUs are held now (%; 0: not throttling). */
  get percent(): number {
    return this.share;
  }

  /** Throttles harder (20 % at first, then 10 % more each call, at most 90 %); returns the new share. */
  step(): number {
    if (this.stopping) return this.share;
    this.share = this.share ? Math.min(this.share + STEP, MOST) : FIRST;
    this.loop ??= this.run();
    return this.share;
  }

  /** Stops throttling; resolves once the vCPUs run again. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await this.machine.pause();
      try {
        await this.sleep((this.periodMs * this.share) / 100);
      } finally {
        await this.machine.resume();
      }
      if (this.stopping) break;
      await this.sleep((this.periodMs * (100 - this.share)) / 100);
    }
  }
}
