/**
 * Helpers for the linux-tier guest tests: the micro host's config with the guest kit, a boot in
 * this process with the console on a unix socket (console input answered), and a boot of
 * bin/vmm.js as users start it (for signals: SIGKILL, SIGTERM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import * as os from 'node:os';
import {
  detectHost,
  guestKit,
  guestTool,
  parseGuestOutput,
  writeInitramfsWithScript,
  type GuestKit,
  type GuestOutput,
} from '../harness/guest-kit.js';
import { runVm, type RunResult } from '../../core/vmm/run.js';
import { skipUnlessCi } from '../setup/environment.js';
import { readDiag, threadStates } from '../runner/watchdog.js';
import { stallEvidence } from './stall-evidence.js';
import { seccompDeathReport } from '../../core/security/seccomp-report.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Source tree root (the folder holding hosts/micro.yaml). */
export function repoRoot(): string {
  for (let d = here; d !== path.dirname(d); d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'hosts', 'micro.yaml'))) return d;
  }
  throw new Error('cannot find hosts/micro.yaml above ' + here);
}

/** The folder the compiled tree runs from (dist, or .build/<name>). */
export function compiledDir(): string {
  return path.resolve(here, '..', '..');
}

/**
 * Mocha hooks for a guest test file: before() skips where this host cannot boot Linux (a failure
 * under CI=true; the tier runner runs the file inside the sandbox), finds the guest kit and makes a scratch folder;
 * after() removes it. Read `kit` and `dir` inside the tests.
 */
export function guestScope(prefix: string): { readonly kit: GuestKit; readonly dir: string } {
  const scope = { kit: undefined as unknown as GuestKit, dir: '' };
  before(async function () {
    if (!detectHost().canBootLinux) {
      skipUnlessCi(this, "Linux does not boot on this host's KVM (the tier runner runs this file in the sandbox)");
    }
    scope.kit = await guestKit({ log: () => {} });
    scope.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  });
  after(() => {
    if (scope.dir) fs.rmSync(scope.dir, { recursive: true, force: true });
  });
  return scope;
}

/** key=value lines of a guest's result (later keys win). */
export function guestResult(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

/** Script lines that wait for one line of console input and echo it back (`console-input=...`). */
export const CONSOLE_INPUT_STEP = 'echo ready-for-input\nread -t 120 -r line\necho "console-input=$line"\n';
/** What the host types when the guest asks (see CONSOLE_INPUT_STEP). */
export const TYPED = 'tsvmm-typed-42';

/** One `plugins:` entry of a config. */
export interface PluginEntry {
  name: string;
  id?: string;
  config?: unknown;
}
/** The micro host's config as microConfig returns it (plain data, for runVm or a YAML file). */
export type MicroYaml = Record<string, unknown> & { boot: Record<string, unknown>; plugins: unknown[] };

/**
 * A linux-tier test guest on the micro host: the kit, a scratch folder the caller owns, the guest script /init runs,
 * machine size (memory as a YAML size such as '512M') and the plugins and files to add.
 */
export interface MicroVm {
  kit: GuestKit;
  /** Scratch folder for the initramfs and the console socket. */
  dir: string;
  name: string;
  script: string;
  vcpus: number;
  memory?: string;
  /** Added after the micro host's own plugins. */
  plugins: PluginEntry[];
  /** Extra files for the initramfs (path inside the guest -> bytes); /bin/guestio is always there. */
  files?: Record<string, Uint8Array | string>;
  cmdline?: string;
  onReset?: 'exit' | 'restart';
  /** machine.overcommit: allow more guest RAM than the host has (a big, sparsely touched guest). */
  overcommit?: boolean;
  /** machine.memoryBackend (vhost-user devices need 'memfd': guest RAM the back end can map). */
  memoryBackend?: 'anonymous' | 'memfd';
  console?: unknown;
  /**
   * bootWithConsole: stop the VM (reason 'error: deadline') when it runs longer than this, so a hung guest
   * fails its test with the console tail instead of running into the tier runner's watchdog.
   */
  deadlineMs?: number;
}

/** The micro host (hosts/micro.yaml) with the guest kit, the script (+ guestio) and the given plugins. */
export function microConfig(o: MicroVm): MicroYaml {
  const micro = parseYaml(fs.readFileSync(path.join(repoRoot(), 'hosts', 'micro.yaml'), 'utf8')) as {
    machine: Record<string, unknown>;
    boot: Record<string, unknown>;
    plugins: PluginEntry[];
  };
  micro.machine.vcpus = o.vcpus;
  if (o.memory) micro.machine.memory = o.memory;
  if (o.onReset) micro.machine.onReset = o.onReset;
  if (o.overcommit) micro.machine.overcommit = true;
  if (o.memoryBackend) micro.machine.memoryBackend = o.memoryBackend;
  micro.boot.kernel = o.kit.vmlinux;
  const files = { 'bin/guestio': fs.readFileSync(guestTool('guestio')), ...(o.files ?? {}) };
  micro.boot.initramfs = writeInitramfsWithScript(o.kit, o.script, path.join(o.dir, `${o.name}.initramfs`), files);
  micro.boot.cmdline = `${String(micro.boot.cmdline)} quiet ${o.cmdline ?? ''}`.trimEnd();
  if (o.console) {
    for (const p of micro.plugins) if (p.name === 'serial') p.config = { port: 'COM1', console: o.console };
  }
  micro.plugins.push(...o.plugins);
  return micro;
}

/**
 * What a guest run produced: the parsed console markers, the script's key=value result lines, the whole console, the
 * VMM's run result and the wall time in seconds.
 */
export interface GuestRun {
  out: GuestOutput;
  /** The script's key=value lines. */
  result: Map<string, string>;
  console: string;
  vm: RunResult;
  /** Wall time of the boot (assembly to stop). */
  seconds: number;
}

/**
 * Boots in this process with the console on a unix socket and the script's stdin on the console;
 * types TYPED when the guest prints ready-for-input (CONSOLE_INPUT_STEP), reads to the end.
 * Throws when the script did not finish, with the console's tail.
 */
export async function bootWithConsole(o: Omit<MicroVm, 'console'>): Promise<GuestRun> {
  const sock = path.join(o.dir, `${o.name}.sock`);
  const consoleCfg = { kind: 'unix-socket', path: sock };
  const config = microConfig({ ...o, console: consoleCfg, cmdline: `${o.cmdline ?? ''} tsvmm.stdin=console` });
  let seen = '';
  let client: net.Socket | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let hitDeadline = false;
  const t0 = Date.now();
  const vm = await runVm(
    { config, baseDir: o.dir },
    {
      signals: [],
      onStarted: (started) => {
        if (o.deadlineMs) {
          deadline = setTimeout(() => {
            hitDeadline = true;
            void started.machine?.stop({ kind: 'error', error: new Error(`deadline of ${o.deadlineMs} ms`) });
          }, o.deadlineMs);
        }
        client = net.connect(sock);
        let typed = false;
        client.on('data', (d: Buffer) => {
          seen += d.toString('latin1');
          if (!typed && seen.includes('ready-for-input\r\n')) {
            typed = true;
            client!.write(`${TYPED}\n`);
          }
        });
        client.on('error', () => {});
      },
    },
  );
  clearTimeout(deadline);
  // the console ends the connection after its last bytes when the VM stops: read to that end
  if (client && !client.destroyed) {
    await new Promise<void>((res) => {
      const t = setTimeout(res, 15_000);
      client!.once('close', () => {
        clearTimeout(t);
        res();
      });
    });
    client.destroy();
  }
  const seconds = (Date.now() - t0) / 1000;
  const out = parseGuestOutput(seen);
  if (!out.resultComplete) {
    const why = `VM stopped: ${hitDeadline ? `deadline of ${o.deadlineMs} ms passed` : vm.reason.kind}, ${seconds.toFixed(0)} s`;
    throw new Error(`guest script did not finish (${why}); console tail:\n${seen.slice(-4000)}`);
  }
  return { out, result: guestResult(out.result ?? ''), console: seen, vm, seconds };
}

/** How a VMM process ended: exit code or signal, everything it printed (stdout + stderr) and stdout alone. */
export interface VmmEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  text: string;
  stdout: string;
  seconds: number;
}

/** A `bin/vmm.js run` child process started by spawnVmm; the caller kills it if it must not outlive the test. */
export interface VmmProcess {
  child: ChildProcess;
  /** Resolves when the process ended: exit code or signal, everything it printed (stdout + stderr). */
  ended: Promise<VmmEnd>;
  /**
   * Evidence from a VMM that stopped making progress, before the caller kills it: each thread's state and
   * current system call, and the main thread's JavaScript stack and active libuv handles (a Node report).
   */
  diagnose(): Promise<string>;
}

/**
 * Starts `bin/vmm.js run <config>` as users do (the compiled tree of this run); `onOutput` sees
 * the stdout text so far (the serial console with the stdio console) after each chunk.
 */
export function spawnVmm(
  configPath: string,
  o: {
    cwd: string;
    onOutput?: (stdout: string, child: ChildProcess) => void;
    stdin?: boolean;
    /** Run as this user and group (no supplementary groups; root's capabilities are gone after the switch). */
    user?: { uid: number; gid: number };
  },
): VmmProcess {
  const root = repoRoot();
  const t0 = Date.now();
  const diagDir = fs.mkdtempSync(path.join(o.cwd, 'vmm-report-'));
  // SIGUSR2 is the vCPU kick: the report answers SIGPWR (as the tier runner's watchdog asks mocha)
  const reportFlags = ['--report-on-signal', '--report-signal=SIGPWR', `--report-directory=${diagDir}`];
  const child = spawn(process.execPath, [...reportFlags, path.join(root, 'bin', 'vmm.js'), 'run', configPath], {
    cwd: o.cwd,
    env: { ...process.env, VMM_DIST: path.relative(root, compiledDir()) || 'dist' },
    stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    ...(o.user ?? {}),
  });
  let stdout = '';
  let text = '';
  child.stdout!.on('data', (d: Buffer) => {
    const s = d.toString('latin1');
    stdout += s;
    text += s;
    o.onOutput?.(stdout, child);
  });
  child.stderr!.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  const ended = new Promise<VmmEnd>((resolve) => {
    child.on('close', (code, signal) => {
      if (signal === 'SIGSYS') text += `\n[test] the VMM was ${seccompDeathReport(child.pid!)}\n`;
      resolve({ code, signal, text, stdout, seconds: (Date.now() - t0) / 1000 });
    });
  });
  const diagnose = async (): Promise<string> => {
    const threads = threadStates(child.pid!);
    child.kill('SIGPWR');
    for (let i = 0; i < 50 && !readDiag(diagDir); i++) await new Promise((r) => setTimeout(r, 100));
    return `${threads}${readDiag(diagDir) ?? 'no Node report within 5 s\n'}`;
  };
  return { child, ended, diagnose };
}

/**
 * The VMM's end, bounded: once `ms` passed (or, with `silentMs`, once its stdout, the guest's console, was silent that
 * long) it records the stalled VMM's evidence (stallEvidence: threads sampled twice, Node report, the device statistics
 * it logs when stopped on SIGTERM) and ends it, so a stalled guest fails its test with the VMM's own evidence well
 * under the runner's watchdog. `evidence` is '' when the VMM ended by itself (or was killed by the test for its own
 * reasons); otherwise it says why it was stopped, and the VMM ended with 143 or SIGKILL.
 */
export async function endedWithin(
  vmm: VmmProcess,
  ms: number,
  o: { silentMs?: number } = {},
): Promise<VmmEnd & { evidence: string }> {
  let stalled: Promise<string> | undefined;
  const stall = (why: string): void => {
    stalled ??= stallEvidence(vmm).then((e) => `${why}\n${e}`);
  };
  const deadline = setTimeout(() => stall(`stopped at the ${ms / 1000} s deadline`), ms);
  let lastOutput = Date.now();
  vmm.child.stdout?.on('data', () => void (lastOutput = Date.now()));
  const silent = o.silentMs;
  const watch =
    silent === undefined
      ? undefined
      : setInterval(() => {
          if (Date.now() - lastOutput > silent) stall(`stopped after ${silent / 1000} s of silence on the console`);
        }, 1_000);
  try {
    const r = await vmm.ended;
    return { ...r, evidence: stalled ? await stalled : '' };
  } finally {
    clearTimeout(deadline);
    clearInterval(watch);
  }
}
