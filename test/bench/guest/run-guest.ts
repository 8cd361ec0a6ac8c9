import { Markers } from '../../../hosts/guestkit/markers.js';
import { launch, type Launched, type LaunchOptions } from './launch.js';

/** How runGuest's VMM run went: the launched process (console timings, exit) and whether the guest script finished. */
export interface GuestRunResult {
  l: Launched;
  /** The guest script ran to its end (TSVMM-EXIT seen). */
  finished: boolean;
  /** Why it did not, in a line. */
  problem?: string;
}

/**
 * Runs a VMM until the guest script reported its exit status, then gives it `graceMs` to power
 * off by itself before stopping it (the figures come from the console, not the exit).
 */
export async function runGuest(argv: string[], o: LaunchOptions & { graceMs?: number }): Promise<GuestRunResult> {
  let finished = false;
  let onExitLine: () => void = () => {};
  const exited = new Promise<void>((r) => {
    onExitLine = r;
  });
  const l = launch(argv, {
    ...o,
    onLine: (line, ms, ll) => {
      if (line.startsWith(Markers.EXIT)) {
        finished = true;
        onExitLine();
      }
      o.onLine?.(line, ms, ll);
    },
  });
  const end = await Promise.race([l.done.then(() => 'done' as const), exited.then(() => 'exit' as const)]);
  if (end === 'exit') {
    const t = setTimeout(() => void l.kill(1000), o.graceMs ?? 8000);
    await l.done;
    clearTimeout(t);
  }
  const r = await l.done;
  if (finished) return { l, finished };
  const why = r.timedOut
    ? `no result within ${Math.round(o.timeoutMs / 1000)} s`
    : `exited (${r.code ?? r.signal}) before the script finished`;
  return { l, finished, problem: `${why}${l.initMs === undefined ? ', init never reached' : ''}` };
}

/** The boot-timer's log line (pino JSON on stderr) of our VMM. */
export interface BootTimerLog {
  time: number;
  bootTimeMs: number;
  sinceStartedMs?: number;
  sinceProcessStartMs?: number;
}

/** The boot-timer plugin's 'guest boot completed' log record from our VMM's stderr, or undefined when absent. */
export function bootTimerLog(stderr: string): BootTimerLog | undefined {
  for (const line of stderr.split('\n')) {
    if (!line.includes('guest boot completed')) continue;
    try {
      const j = JSON.parse(line) as Partial<BootTimerLog>;
      if (typeof j.time === 'number' && typeof j.bootTimeMs === 'number') return j as BootTimerLog;
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

/**
 * Where our VMM's vCPU time went, in a line, from its 'vCPU exit statistics' log records (plugins/kvm, one per
 * vCPU runner, at stop): time in the guest, exits by kind (count, total ms) and the exits that hopped to the main
 * thread. Undefined when the VMM logged none (killed before it stopped).
 */
export function exitSummary(stderr: string): string | undefined {
  const parts: string[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.includes('vCPU exit statistics')) continue;
    try {
      const j = JSON.parse(line) as {
        guestMs?: number;
        exits?: Record<string, { count: number; totalNs: number }>;
        hops?: Record<string, number>;
      };
      const exits = Object.entries(j.exits ?? {})
        .sort((a, b) => b[1].totalNs - a[1].totalNs)
        .map(([k, v]) => `${k} ${v.count} (${Math.round(v.totalNs / 1e6)} ms)`)
        .join(', ');
      const hops = Object.entries(j.hops ?? {})
        .slice(0, 4)
        .map(([k, v]) => `${k} x${v}`)
        .join(', ');
      parts.push(`in guest ${Math.round(j.guestMs ?? 0)} ms; exits ${exits || 'none'}${hops ? `; hops ${hops}` : ''}`);
    } catch {
      /* not JSON */
    }
  }
  return parts.length ? parts.join(' | ') : undefined;
}
