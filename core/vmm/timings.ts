/**
 * Startup marks: milliseconds since the process started (performance.now(), whose origin is
 * the process start) at each step from config load to the lifecycle's 'started'. The VMM logs
 * them at debug level ('startup timings') and prints them to stderr with VMM_TIMINGS=1, so a
 * user or the benchmark can see where the time before the vCPUs run goes.
 */
export interface StartupMark {
  readonly step: string;
  readonly ms: number;
}

/** Collects the startup marks of one VMM start (see StartupMark). */
export class StartupTimings {
  private readonly list: StartupMark[] = [];
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Records `step` now (or at `ms`, ms since process start); returns the time in ms since process start. */
  mark(step: string, ms: number = this.now()): number {
    if (this.list.length < 1000) this.list.push({ step, ms: Math.round(ms * 10) / 10 });
    return ms;
  }

  get marks(): readonly StartupMark[] {
    return this.list;
  }

  /** One line per mark: time since process start and since the previous mark. */
  format(): string {
    let prev = 0;
    return this.list
      .map((m) => {
        const line = `${m.ms.toFixed(1).padStart(9)} ms  +${(m.ms - prev).toFixed(1).padStart(8)}  ${m.step}`;
        prev = m.ms;
        return line;
      })
      .join('\n');
  }

  clear(): void {
    this.list.length = 0;
  }
}

/** The process-wide marks (one VMM per process; a restarted VM keeps adding to them). */
export const startupTimings = new StartupTimings();

/** Marks a step on the process-wide startup timeline. */
export const markStartup = (step: string): number => startupTimings.mark(step);

/**
 * Marks a vCPU's first entry into the guest (KVM_RUN) from the wall-clock time its thread took it
 * (`epochMs`: performance.timeOrigin + performance.now() on that thread, so both threads share a clock);
 * with VMM_TIMINGS=1 also prints it to stderr, as `vmm: first KVM_RUN (vCPU n): <ms> ms since process start,
 * epoch <ms>`. The startup timings are printed at 'started', before the vCPU threads run, so this is their last line.
 */
export function markFirstRun(vcpu: number, epochMs: number): number {
  const ms = startupTimings.mark(`first KVM_RUN (vCPU ${vcpu})`, epochMs - performance.timeOrigin);
  if (process.env.VMM_TIMINGS === '1')
    process.stderr.write(
      `vmm: first KVM_RUN (vCPU ${vcpu}): ${ms.toFixed(1)} ms since process start, epoch ${epochMs.toFixed(1)}\n`,
    );
  return ms;
}
