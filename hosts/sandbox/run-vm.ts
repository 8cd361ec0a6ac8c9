import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { DEFAULT_HEARTBEAT, projectLayout, runInSandbox, type SandboxOptions, type SandboxResult } from './sandbox.js';
import type { HeartbeatLimits } from './heartbeat.js';
import { SandboxError } from './errors.js';
import type { SharedFile } from './shares.js';

/** Host files a VM config names (kernel, initramfs, disk images...): every string value that is an existing file. */
export function filesNamedByConfig(configPath: string): string[] {
  const abs = resolve(configPath);
  if (!existsSync(abs)) throw new SandboxError('ImageBuild', `config ${abs} does not exist`, { config: abs });
  const base = dirname(abs);
  const found = new Set<string>([abs]);
  const walk = (v: unknown) => {
    if (typeof v === 'string') {
      if (v.length === 0 || v.length > 4096 || v.includes('\n')) return;
      const p = resolve(base, v);
      try {
        if (statSync(p).isFile()) found.add(p);
      } catch {
        /* not a path */
      }
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  try {
    walk(parse(readFileSync(abs, 'utf8')));
  } catch {
    /* the VMM reports bad YAML itself */
  }
  return [...found];
}

/**
 * The disk images a VM config names (virtio-blk `path`, relative to the YAML file) that exist on
 * the host, each with its read-only flag: the sandbox shares these instead of copying them.
 */
export function disksNamedByConfig(configPath: string): SharedFile[] {
  const abs = resolve(configPath);
  let doc: unknown;
  try {
    doc = parse(readFileSync(abs, 'utf8'));
  } catch {
    return []; /* the VMM reports bad YAML itself */
  }
  const plugins = (doc as { plugins?: unknown } | null)?.plugins;
  if (!Array.isArray(plugins)) return [];
  const disks: SharedFile[] = [];
  for (const p of plugins as { name?: unknown; config?: { path?: unknown; readOnly?: unknown } }[]) {
    if (p?.name !== 'virtio-blk' || typeof p.config?.path !== 'string') continue;
    const file = resolve(dirname(abs), p.config.path);
    if (existsSync(file)) disks.push({ path: file, readOnly: p.config.readOnly === true });
  }
  return disks;
}

/** How runVmInSandbox runs the VM: with our terminal on its console or not, a time limit (ms), extra files. */
export interface RunVmInSandboxOptions {
  /** Attach our terminal to the console (stdin to the guest, output live). Default true. */
  console?: boolean;
  timeoutMs?: number;
  /** Extra host files the VM needs beyond those the config names. */
  files?: string[];
  /** How often a run whose L1 froze is started again in a fresh L1 (default 1; 0: never). */
  retries?: number;
  /** L1's heartbeat limits (default DEFAULT_HEARTBEAT). */
  heartbeat?: HeartbeatLimits;
  /** Where the retry notice goes, one line (default: stderr, prefixed `vmm: `). */
  notify?: (line: string) => void;
  /** Runs the command in L1 (default runInSandbox; tests give a fake L1). */
  sandbox?: (command: string, o: SandboxOptions) => Promise<SandboxResult>;
}

/** Runs the VM once more after L1 froze, by default: the known freeze is rare (hosts/sandbox/README.md). */
const DEFAULT_RETRIES = 1;

/**
 * `vmm run --sandbox <config>`: runs `vmm run <config>` inside the nested sandbox (L1 has a real
 * /dev/kvm), copying the config and the files it names in at their host paths, except its disk
 * images: those L1 reaches live over virtio-fs, so the guest's writes land in the host files.
 * When L1 freezes (its heartbeat stops: QEMU is killed), the VM is started again in a fresh L1, at most
 * `retries` times, with a one-line notice each time; the guest boots from the start on its disks as the freeze
 * left them. Resolves with the last result; `exitCode` is the inner `vmm run`'s status.
 */
export async function runVmInSandbox(configPath: string, o: RunVmInSandboxOptions = {}): Promise<SandboxResult> {
  const { root, compiled } = projectLayout();
  const config = resolve(configPath);
  const attach = o.console ?? true;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const run = o.sandbox ?? runInSandbox;
  const notify = o.notify ?? ((l: string) => process.stderr.write(`vmm: ${l}\n`));
  const retries = Math.max(0, o.retries ?? DEFAULT_RETRIES);
  for (let attempt = 1; ; attempt++) {
    const r = await run(`exec node ${q(resolve(root, 'bin', 'vmm.js'))} run ${q(config)}`, {
      cwd: dirname(config),
      env: { VMM_DIST: relative(root, compiled) || 'dist' },
      files: [...filesNamedByConfig(config), ...(o.files ?? [])],
      shares: disksNamedByConfig(config),
      heartbeat: o.heartbeat ?? DEFAULT_HEARTBEAT,
      ledger: { source: 'run' },
      timeoutMs: o.timeoutMs ?? 60 * 60_000,
      onOutput: attach ? (s) => process.stdout.write(s) : undefined,
      attachStdin: attach && process.stdin.isTTY === true,
    });
    if (r.status !== 'frozen') return r;
    if (attempt > retries) {
      const gaveUp = retries > 0 ? `\n  L1 froze in each of ${attempt} attempts; not starting it again.` : '';
      return { ...r, report: r.report + gaveUp };
    }
    notify(
      `sandbox (L1) froze (${r.killReason ?? 'no heartbeat'}) after ${(r.durationMs / 1000).toFixed(0)} s; ` +
        `starting the VM again in a fresh L1 (attempt ${attempt + 1} of ${retries + 1}), ` +
        'from its boot, on its disks as the freeze left them',
    );
  }
}
