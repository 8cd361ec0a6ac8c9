import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { GuestKitError } from './errors.js';

/** Module names compare with '-' and '_' as the same character (as the kernel does). */
export const modName = (s: string): string => s.replace(/\.ko(\.[a-z]+)?$/, '').replace(/-/g, '_');

/** Reads the `depends=` list from a module's .modinfo strings. */
export function moduleDepends(ko: Uint8Array): string[] {
  const buf = Buffer.from(ko.buffer, ko.byteOffset, ko.byteLength);
  const at = buf.indexOf('\0depends=');
  if (at < 0) return [];
  const start = at + '\0depends='.length;
  const end = buf.indexOf(0, start);
  const list = buf.subarray(start, end < 0 ? start : end).toString('latin1');
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(modName);
}

/** Name -> path (relative to the modules dir) of every .ko under `kernel/`. */
export function indexModules(modulesDir: string): Map<string, string> {
  const index = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) index.set(modName(e.name), relative(modulesDir, p));
    }
  };
  if (existsSync(join(modulesDir, 'kernel'))) walk(join(modulesDir, 'kernel'));
  return index;
}

/** Names of modules built into the kernel (modules.builtin). */
export function builtinModules(modulesDir: string): Set<string> {
  const f = join(modulesDir, 'modules.builtin');
  if (!existsSync(f)) return new Set();
  return new Set(
    readFileSync(f, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => modName(l.split('/').pop()!)),
  );
}

/** A kernel module the kit's initramfs should load, by module name (no .ko, dashes as underscores: virtio_blk). */
export interface ModuleRequest {
  name: string;
  /** Skip silently when the kernel has neither the module nor it built in. */
  optional?: boolean;
}

/**
 * Orders modules for insmod: each module's dependencies first, otherwise the order asked for.
 * Built-in modules are left out; a missing required module is an error.
 */
export function resolveModules(
  wanted: ModuleRequest[],
  modulesDir: string,
  read: (path: string) => Uint8Array = (p) => readFileSync(p),
): string[] {
  const index = indexModules(modulesDir);
  const builtin = builtinModules(modulesDir);
  const order: string[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (name: string, optional: boolean, chain: string[]) => {
    const n = modName(name);
    if (done.has(n) || builtin.has(n)) return;
    const path = index.get(n);
    if (!path) {
      if (optional) return;
      throw new GuestKitError(
        'MissingModule',
        `kernel module ${n} is neither in ${modulesDir} nor built in${chain.length ? ` (needed by ${chain.join(' <- ')})` : ''}`,
        { module: n },
      );
    }
    if (visiting.has(n)) return; // a cycle cannot load anyway; insmod will say so
    visiting.add(n);
    for (const dep of moduleDepends(read(join(modulesDir, path)))) visit(dep, false, [n, ...chain]);
    visiting.delete(n);
    done.add(n);
    order.push(path);
  };
  for (const w of wanted) visit(w.name, w.optional ?? false, []);
  return order;
}

/** What the guest (L2) initramfs loads, in this order. */
export const GUEST_MODULES: ModuleRequest[] = [
  { name: 'virtio_ring' },
  { name: 'virtio' },
  { name: 'virtio_mmio' },
  { name: 'virtio_pci_modern_dev' },
  { name: 'virtio_pci_legacy_dev', optional: true },
  { name: 'virtio_pci' },
  { name: 'virtio_blk' },
  { name: 'failover' },
  { name: 'net_failover' },
  { name: 'virtio_net' },
  // ext4 and its helpers (built in on Debian's cloud kernel; loaded here where modular)
  { name: 'crc16', optional: true },
  { name: 'crc32c_generic', optional: true },
  { name: 'libcrc32c', optional: true },
  { name: 'mbcache', optional: true },
  { name: 'jbd2', optional: true },
  { name: 'ext4', optional: true },
  // further virtio devices other engineers test
  { name: 'virtio_console', optional: true },
  { name: 'virtio_balloon', optional: true },
  { name: 'virtio_rng', optional: true },
  { name: 'vmw_vsock_virtio_transport', optional: true },
  { name: 'virtiofs', optional: true },
  // the ACPI power button (a VMM's SIGTERM asks the guest to shut down) and its key events for /init's watcher
  { name: 'evdev', optional: true },
  { name: 'button', optional: true },
];

/** What the sandbox's L1 adds: KVM (AMD: TCG's `-cpu max` exposes SVM), tap/bridge, vhost. */
export const L1_MODULES: ModuleRequest[] = [
  { name: 'irqbypass' },
  { name: 'kvm' },
  { name: 'kvm_amd' },
  { name: 'tun', optional: true },
  { name: 'bridge', optional: true },
  { name: 'veth', optional: true },
  { name: 'vhost_net', optional: true },
  { name: 'vhost_vsock', optional: true },
];
