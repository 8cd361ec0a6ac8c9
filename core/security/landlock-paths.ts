import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { buildLocations } from '../plugin/locations.js';
import type { VmPlan } from '../vmm/plan.js';
import type { LandlockRule } from './landlock.js';

/** Keys whose string values name a path that may not exist yet (a socket, a file to create): its folder is allowed. */
const PATH_KEY = /path|file|socket|unix|peer|dir|log|output/i;

/** Every string in `value` with the key it sits under. */
function* strings(value: unknown, key = ''): Generator<[string, string]> {
  if (typeof value === 'string') yield [key, value];
  else if (Array.isArray(value)) for (const v of value) yield* strings(v, key);
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) yield* strings(v, k);
}

/**
 * The YAML file of the config, read-only; the paths it names, writable: the boot files, the memory file and every
 * string of the plugins' configs that is an existing path (relative to the YAML file) or, under a key such as
 * `path` or `socket`, a path whose folder exists. Plus, read-only, the folders of the plugins the config lists (an
 * out-of-tree plugin's code), what the Node process itself needs (this installation, the guest kit cache, shared
 * libraries, /proc and /sys) and the devices a VMM
 * opens (/dev/kvm, /dev/net/tun, terminals, /dev/null, /dev/urandom).
 */
export function landlockRules(plan: VmPlan): LandlockRule[] {
  const rules: LandlockRule[] = [];
  const seen = new Set<string>();
  const add = (path: string, access: LandlockRule['access']): void => {
    const key = `${access}:${path}`;
    if (!seen.has(key)) {
      seen.add(key);
      rules.push({ path, access });
    }
  };
  const named = (key: string, s: string): void => {
    if (s === '' || s.includes('\n') || (s.includes(':') && !isAbsolute(s))) return; // e.g. guestkit:vmlinux, host:port
    const p = resolve(plan.baseDir, s);
    if (existsSync(p)) add(p, 'write');
    else if (PATH_KEY.test(key) && existsSync(dirname(p))) add(dirname(p), 'write');
  };
  // the YAML file itself, read-only: the VMM that runs inside the domain reads it again (the same command line)
  const file = plan.source?.file;
  if (file && existsSync(resolve(file))) add(resolve(file), 'read');
  const { boot, machine } = plan.config;
  for (const s of [boot?.kernel, boot?.initramfs, machine.memoryPath]) if (s) named('path', s);
  for (const p of plan.plugins) for (const [k, s] of strings(p.config)) named(k, s);
  // the plugins' own folders (an out-of-tree plugin's code and dependencies), read-only: the VMM loads them again
  for (const p of plan.plugins) {
    if (!p.plugin) continue;
    add(p.plugin.dir, 'read');
    add(dirname(p.plugin.entryPath), 'read');
  }

  add(buildLocations().repoRoot, 'read');
  add(join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tsvmm'), 'read');
  add(process.execPath, 'read');
  for (const p of [
    '/usr/lib',
    '/usr/lib64',
    '/lib',
    '/lib64',
    '/etc/ld.so.cache',
    '/etc/localtime',
    '/etc/ssl',
    '/proc',
    '/sys',
  ])
    add(p, 'read');
  for (const p of [
    '/dev/kvm',
    '/dev/net/tun',
    '/dev/null',
    '/dev/zero',
    '/dev/urandom',
    '/dev/random',
    '/dev/tty',
    '/dev/pts',
    '/dev/ptmx',
  ])
    add(p, 'write');
  return rules;
}
