import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { projectLayout, runInSandbox, type SandboxResult } from './sandbox.js';
import { SandboxError } from './errors.js';

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
      try { if (statSync(p).isFile()) found.add(p); } catch { /* not a path */ }
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  try { walk(parse(readFileSync(abs, 'utf8'))); } catch { /* the VMM reports bad YAML itself */ }
  return [...found];
}

export interface RunVmInSandboxOptions {
  /** Attach our terminal to the console (stdin to the guest, output live). Default true. */
  console?: boolean;
  timeoutMs?: number;
  /** Extra host files the VM needs beyond those the config names. */
  files?: string[];
}

/**
 * `vmm run --sandbox <config>`: runs `vmm run <config>` inside the nested sandbox (L1 has a real
 * /dev/kvm), copying the config and the files it names in at their host paths. Resolves with the
 * result; `exitCode` is the inner `vmm run`'s status.
 */
export async function runVmInSandbox(configPath: string, o: RunVmInSandboxOptions = {}): Promise<SandboxResult> {
  const { root, compiled } = projectLayout();
  const config = resolve(configPath);
  const attach = o.console ?? true;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return runInSandbox(`exec node ${q(resolve(root, 'bin', 'vmm.js'))} run ${q(config)}`, {
    cwd: dirname(config),
    env: { VMM_DIST: relative(root, compiled) || 'dist' },
    files: [...filesNamedByConfig(config), ...(o.files ?? [])],
    timeoutMs: o.timeoutMs ?? 60 * 60_000,
    onOutput: attach ? (s) => process.stdout.write(s) : undefined,
    attachStdin: attach && process.stdin.isTTY === true,
  });
}
