import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { parseGuestOutput, Markers } from '../guestkit/markers.js';
import {
  heartbeatQemuArgs,
  HeartbeatWatch,
  listenHeartbeat,
  type HeartbeatLimits,
  type HeartbeatListener,
} from './heartbeat.js';

/** Options for one QEMU boot of a Linux guest that reports through the guest kit's markers. */
export interface BootOptions {
  /** QEMU binary; default qemu-system-x86_64 (a test may pass a fake). */
  qemu?: string;
  accel: 'kvm' | 'tcg';
  /** TCG's threading (`-accel tcg,thread=`); default multi (one host thread per vCPU). */
  tcgThread?: 'multi' | 'single';
  /** `-cpu` model; default `max` under TCG (SVM for L1's kvm_amd), `host` under KVM. */
  cpuModel?: string;
  /** -M value; default microvm without option ROMs, with an RTC (without one, Linux polls CMOS ~40,000 times). */
  machine?: string;
  kernel: string;
  initramfs?: string;
  /** Kernel command line; default `console=ttyS0 panic=-1 quiet`. */
  append?: string;
  memoryMiB?: number;
  cpus?: number;
  /** Extra QEMU arguments (disks, NICs). */
  extraArgs?: string[];
  /**
   * Guest RAM in a shared memfd (`memory-backend-memfd,share=on`), which vhost-user back ends
   * such as virtiofsd need to map it.
   */
  sharedMemory?: boolean;
  /** Wall-clock limit; QEMU is killed when it passes. */
  timeoutMs: number;
  /** Kill QEMU when the console stays silent this long (a frozen guest); status 'silent'. */
  silenceTimeoutMs?: number;
  /** Live console output (e.g. process.stdout.write). */
  onOutput?: (chunk: string) => void;
  /** Hand our stdin to the guest's serial console (interactive use). */
  attachStdin?: boolean;
  /**
   * Expect a heartbeat on the guest's second UART (heartbeat.ts; the guest must run
   * heartbeatScript()); QEMU is killed when it stops: status 'frozen'.
   */
  heartbeat?: HeartbeatLimits;
  /** Kills QEMU when aborted (status 'aborted'; the reason's message goes into the report). */
  abort?: AbortSignal;
}

/** How a QEMU boot ended (part of bootVm's result). */
export type BootStatus =
  /** QEMU ended by itself (poweroff, reboot with -no-reboot, or an error). */
  | 'exited'
  /** The time limit passed; QEMU was killed. */
  | 'timeout'
  /** The console stayed silent past silenceTimeoutMs; QEMU was killed. */
  | 'silent'
  /** The guest's heartbeat stopped (BootOptions.heartbeat); QEMU was killed. */
  | 'frozen'
  /** BootOptions.abort fired; QEMU was killed. */
  | 'aborted'
  /** QEMU could not be started. */
  | 'spawn-failed';

/** What bootVm saw: how QEMU ended, what the guest's /init and script reported, and the console and QEMU output. */
export interface BootResult {
  status: BootStatus;
  qemuExitCode: number | null;
  /** The kernel ran the kit's /init (TSVMM-INIT-OK seen). */
  initReached: boolean;
  /** The guest script's exit status (TSVMM-EXIT), when it finished. */
  exitCode?: number;
  /** What the guest script printed, between the result markers. */
  result?: string;
  /** Everything on the serial console. */
  console: string;
  /** QEMU's own messages (stderr). */
  stderr: string;
  durationMs: number;
  /** Milliseconds from spawning QEMU to the init marker. */
  timeToInitMs?: number;
  /** The command line used. */
  argv: string[];
  /** Why QEMU was killed, in words, for 'frozen' and 'aborted'. */
  killReason?: string;
}

const live = new Set<ChildProcess>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
function killAll(): void {
  for (const p of live) p.kill('SIGKILL');
}
function onSignal(sig: NodeJS.Signals): void {
  killAll();
  // with nobody else listening, keep the default meaning of the signal: end the process
  if (process.listenerCount(sig) === 1) process.exit(128 + (osConstants.signals[sig] ?? 0));
}
/** Never leave a QEMU (or a helper daemon) behind: kill it on exit and on SIGINT/SIGTERM/SIGHUP while any runs. */
export function trackChild(c: ChildProcess): void {
  if (live.size === 0) {
    process.on('exit', killAll);
    for (const s of SIGNALS) process.on(s, onSignal);
  }
  live.add(c);
  c.once('exit', () => {
    live.delete(c);
    if (live.size === 0) {
      process.off('exit', killAll);
      for (const s of SIGNALS) process.off(s, onSignal);
    }
  });
}

/**
 * The QEMU command line (arguments after the binary) for a boot: machine, memory, kernel, initramfs, console and, with
 * `heartbeatSocket`, the second UART the heartbeat comes through.
 */
export function qemuArgv(o: BootOptions, heartbeatSocket?: string): string[] {
  const mem = o.memoryMiB ?? 512;
  const machine = o.machine ?? 'microvm,x-option-roms=off,rtc=on';
  const args = [
    '-M',
    o.sharedMemory ? `${machine},memory-backend=tsvmm-ram` : machine,
    '-accel',
    o.accel === 'tcg' ? `tcg,thread=${o.tcgThread ?? 'multi'}` : 'kvm',
    '-cpu',
    o.cpuModel ?? (o.accel === 'tcg' ? 'max' : 'host'),
    '-m',
    String(mem),
    '-smp',
    String(o.cpus ?? 1),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-serial',
    'stdio',
    '-monitor',
    'none',
    '-no-reboot',
    '-kernel',
    o.kernel,
  ];
  if (o.sharedMemory) args.push('-object', `memory-backend-memfd,id=tsvmm-ram,size=${mem}M,share=on`);
  if (o.initramfs) args.push('-initrd', o.initramfs);
  args.push('-append', o.append ?? 'console=ttyS0 panic=-1 quiet');
  if (heartbeatSocket) args.push(...heartbeatQemuArgs(heartbeatSocket));
  args.push(...(o.extraArgs ?? []));
  return args;
}

/** Boots a guest under QEMU, collects the console, enforces the time limit, always reaps QEMU. */
export async function bootVm(o: BootOptions): Promise<BootResult> {
  let watch: HeartbeatWatch | undefined;
  let listener: HeartbeatListener | undefined;
  if (o.heartbeat) listener = await listenHeartbeat((lines) => watch?.beat(lines));
  try {
    return await runQemu(o, listener, (w) => {
      watch = w;
    });
  } finally {
    listener?.close();
  }
}

function runQemu(
  o: BootOptions,
  hb: HeartbeatListener | undefined,
  setWatch: (w: HeartbeatWatch) => void,
): Promise<BootResult> {
  const argv = [o.qemu ?? 'qemu-system-x86_64', ...qemuArgv(o, hb?.socket)];
  const started = Date.now();
  return new Promise((resolve) => {
    let consoleText = '';
    let stderr = '';
    let timeToInitMs: number | undefined;
    let killedFor: { status: BootStatus; reason?: string } | undefined;
    let child: ChildProcess;
    try {
      child = spawn(argv[0], argv.slice(1), { stdio: [o.attachStdin ? 'inherit' : 'ignore', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({
        status: 'spawn-failed',
        qemuExitCode: null,
        initReached: false,
        console: '',
        stderr: String(e),
        durationMs: 0,
        argv,
      });
      return;
    }
    trackChild(child);
    const kill = (status: BootStatus, reason?: string) => {
      if (killedFor) return;
      killedFor = { status, reason };
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('timeout'), o.timeoutMs);
    let silence: NodeJS.Timeout | undefined;
    const armSilence = () => {
      if (o.silenceTimeoutMs === undefined) return;
      clearTimeout(silence);
      silence = setTimeout(() => kill('silent'), o.silenceTimeoutMs);
    };
    armSilence();
    const watch =
      o.heartbeat &&
      new HeartbeatWatch(o.heartbeat, (waited, beats) =>
        kill(
          'frozen',
          beats === 0
            ? `no heartbeat within ${Math.round(waited / 1000)} s of starting`
            : `no heartbeat for ${Math.round(waited / 1000)} s (after ${beats})`,
        ),
      );
    if (watch) setWatch(watch);
    const onAbort = () =>
      kill('aborted', o.abort?.reason instanceof Error ? o.abort.reason.message : String(o.abort?.reason ?? 'aborted'));
    if (o.abort?.aborted) onAbort();
    else o.abort?.addEventListener('abort', onAbort, { once: true });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => {
      armSilence();
      consoleText += s;
      if (timeToInitMs === undefined && consoleText.includes(Markers.INIT_OK)) timeToInitMs = Date.now() - started;
      o.onOutput?.(s);
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      stderr += s;
    });
    let spawnError: Error | undefined;
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(silence);
      watch?.stop();
      o.abort?.removeEventListener('abort', onAbort);
      const parsed = parseGuestOutput(consoleText);
      resolve({
        status: killedFor?.status ?? (spawnError ? 'spawn-failed' : 'exited'),
        qemuExitCode: code,
        initReached: parsed.initReached,
        exitCode: parsed.exitCode,
        result: parsed.result,
        console: consoleText,
        stderr: spawnError ? `${stderr}${spawnError.message}` : stderr,
        durationMs: Date.now() - started,
        timeToInitMs,
        argv,
        killReason: killedFor?.reason,
      });
    });
  });
}

const tail = (s: string, lines: number) =>
  s
    .trimEnd()
    .split('\n')
    .slice(-lines)
    .map((l) => `    | ${l.replace(/\r$/, '')}`)
    .join('\n');

/** A human report of what went wrong (or right) in a boot. */
export function describeBoot(r: BootResult, what = 'guest'): string {
  const secs = (r.durationMs / 1000).toFixed(1);
  if (r.status === 'spawn-failed') return `${what}: could not start ${r.argv[0]}: ${r.stderr.trim()}`;
  const parts: string[] = [];
  if (r.status === 'silent') {
    parts.push(`${what}: the console stayed silent for too long (a frozen guest?); killed after ${secs} s`);
  } else if (r.status === 'frozen') {
    parts.push(`${what}: froze (${r.killReason}); QEMU killed after ${secs} s`);
  } else if (r.status === 'aborted') {
    parts.push(`${what}: stopped after ${secs} s: ${r.killReason}`);
  } else if (r.status === 'timeout') {
    parts.push(
      r.initReached
        ? `${what}: timed out after ${secs} s: init ran but the script did not finish`
        : `${what}: timed out after ${secs} s without reaching init (no ${Markers.INIT_OK} on the console)`,
    );
  } else if (!r.initReached) {
    parts.push(`${what}: QEMU exited (status ${r.qemuExitCode}) after ${secs} s before the guest reached init`);
    if (/panic/i.test(r.console)) parts.push('  the kernel panicked');
  } else if (r.exitCode === undefined) {
    parts.push(
      `${what}: QEMU exited (status ${r.qemuExitCode}) after ${secs} s before the script reported its exit status`,
    );
  } else {
    parts.push(
      `${what}: script exited with ${r.exitCode} after ${secs} s (init after ${((r.timeToInitMs ?? 0) / 1000).toFixed(1)} s)`,
    );
  }
  if (r.stderr.trim()) parts.push(`  QEMU said:\n${tail(r.stderr, 10)}`);
  if (r.exitCode === undefined)
    parts.push(r.console.trim() ? `  last console lines:\n${tail(r.console, 15)}` : '  the console stayed empty');
  return parts.join('\n');
}
