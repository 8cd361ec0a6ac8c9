import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../../core/logger.js';
import type { StopReason } from '../../core/lifecycle.js';
import { assembleVm, type AssembledVm } from '../../core/vmm/assemble.js';
import { exitCodeFor } from '../../core/vmm/exit-codes.js';
import { createQcow2 } from '../qcow/create.js';
import { imageInfo } from '../qcow/info.js';
import { MigrationError } from './errors.js';
import { restoreHooks } from './restore.js';
import { openSnapshot, type OpenSnapshotOptions } from './snapshot-dir.js';
import type { PluginVersion } from './vm-parts.js';

/** One plugin entry of a config as written. */
interface Entry {
  name?: string;
  path?: string;
  id?: string;
  config?: Record<string, unknown>;
}

/** What one clone was given: its folder, disk overlays and fresh MACs. */
export interface CloneInfo {
  index: number;
  dir: string;
  /** Overlay per disk instance (qcow2, backing file: the snapshotted image). */
  overlays: Record<string, string>;
  /** Fresh MAC per NIC instance. */
  macs: Record<string, string>;
}

/** How restoreClones builds the clones: where their folders go, the snapshot checks and a logger. */
export interface CloneOptions extends OpenSnapshotOptions {
  /** Folder holding one folder per clone (default: `<snapshot>/clones`); each clone's folder must be new. */
  cloneDir?: string;
  logger?: Logger;
}

/** A random locally administered unicast MAC (52:54:00 like QEMU's, then 3 random bytes). */
export function freshMac(): string {
  return ['52', '54', '00', ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Replaces every `mac` string in `v` (nested) by `mac`. */
function replaceMacs(v: unknown, mac: string): unknown {
  if (Array.isArray(v)) return v.map((x) => replaceMacs(x, mac));
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [k, k === 'mac' && typeof x === 'string' ? mac : replaceMacs(x, mac)]),
  );
}

/**
 * The config and saved states of clone `index`: every writable virtio-blk disk becomes a qcow2 overlay (in the
 * clone's folder) over the snapshotted image, every virtio-net NIC gets a fresh MAC (config and saved state), a
 * serial console on stdio goes to a file in the clone's folder, files and sockets named by consoles and the
 * migration control socket move there too; the qcow plugin is listed when the VM had none.
 */
async function cloneConfig(
  config: unknown,
  states: unknown,
  baseDir: string,
  dir: string,
  index: number,
): Promise<{ config: unknown; states: unknown; info: CloneInfo }> {
  const cfg = structuredClone(config) as { plugins?: Entry[] };
  const info: CloneInfo = { index, dir, overlays: {}, macs: {} };
  let saved = states;
  for (const e of cfg.plugins ?? []) {
    const instance = e.id ?? e.name ?? '';
    const c = e.config ?? {};
    const set = (): void => void (e.config = c);
    if (e.name === 'virtio-blk' && typeof c.path === 'string' && c.readOnly !== true) {
      const base = path.resolve(baseDir, c.path);
      const format = c.format === 'qcow2' ? 'qcow2' : c.format === 'auto' ? undefined : 'raw';
      const probed =
        format ??
        ((await imageInfo(base)
          .then(() => 'qcow2')
          .catch(() => 'raw')) as 'qcow2' | 'raw');
      const size = probed === 'qcow2' ? (await imageInfo(base)).virtualSize : fs.statSync(base).size;
      const overlay = path.join(dir, `${instance}.qcow2`);
      await createQcow2({ path: overlay, size, backingFile: base, backingFormat: probed });
      Object.assign(c, { path: overlay, format: 'qcow2', allowBacking: true });
      set();
      info.overlays[instance] = overlay;
    } else if (e.name === 'virtio-net') {
      const mac = freshMac();
      c.mac = mac;
      set();
      info.macs[instance] = mac;
      if (Array.isArray(saved))
        saved = saved.map((s: { id?: unknown }) =>
          typeof s?.id === 'string' && s.id.endsWith(`:${instance}`) ? replaceMacs(s, mac) : s,
        );
    } else if (e.name === 'serial') {
      const con = c.console as { kind?: string; path?: string } | undefined;
      if (!con || con.kind === 'stdio') c.console = { kind: 'file', path: path.join(dir, `${instance}.console`) };
      else if (con.path) con.path = path.join(dir, path.basename(con.path));
      set();
    } else if (e.name === 'migration' && typeof c.control === 'string') {
      c.control = path.join(dir, path.basename(c.control));
      set();
    }
  }
  // The overlays need the qcow2 format: list the qcow plugin before the first disk when the VM had none.
  const plugins = cfg.plugins ?? [];
  if (Object.keys(info.overlays).length && !plugins.some((e) => e.name === 'qcow')) {
    const at = plugins.findIndex((e) => e.name === 'virtio-blk');
    plugins.splice(at, 0, { name: 'qcow' });
  }
  return { config: cfg, states: saved, info };
}

/** The saved plugin list with the qcow instance cloneConfig added (any version: it saved no state). */
function withQcow(saved: readonly PluginVersion[], config: unknown): PluginVersion[] {
  const entries = (config as { plugins?: Entry[] }).plugins ?? [];
  if (saved.some((p) => p.name === 'qcow') || !entries.some((e) => e.name === 'qcow')) return [...saved];
  const at = saved.findIndex((p) => p.name === 'virtio-blk');
  const out = [...saved];
  out.splice(at < 0 ? out.length : at, 0, { instance: 'qcow', name: 'qcow', version: '0.0.0' });
  return out;
}

/**
 * Restores `count` clones of the snapshot in `snapDir` into this process (each paused at the saved instant, like
 * restoreVm; `vm.machine.start()` runs it): guest memory is the snapshot's memory file mapped copy-on-write by
 * each (pages nobody wrote are shared through the page cache), disks are qcow2 overlays over the snapshotted
 * images (which must not change while clones use them), NICs get fresh MACs. On failure the clones made so far
 * are disposed.
 */
export async function restoreClones(
  snapDir: string,
  count: number,
  opts: CloneOptions = {},
): Promise<{ vm: AssembledVm; info: CloneInfo }[]> {
  if (!Number.isInteger(count) || count < 1 || count > 64)
    throw new MigrationError('Usage', `--clone takes 1 to 64 clones, not ${count}`);
  const snap = openSnapshot(snapDir, opts);
  const root = opts.cloneDir ?? path.join(snapDir, 'clones');
  const out: { vm: AssembledVm; info: CloneInfo }[] = [];
  try {
    for (let i = 1; i <= count; i++) {
      const dir = path.join(root, `clone-${i}`);
      fs.mkdirSync(dir, { recursive: true });
      if (fs.readdirSync(dir).length) throw new MigrationError('Io', `clone folder ${dir} is not empty`);
      const c = await cloneConfig(snap.body.config, snap.states, snap.body.baseDir, dir, i);
      const body = { plugins: withQcow(snap.body.plugins, c.config), memory: snap.body.memory };
      const hooks = restoreHooks(body, () => c.states, snap.memoryPath);
      const vm = await assembleVm(
        { config: c.config, baseDir: snap.body.baseDir, file: path.join(dir, 'config') },
        { kernel: hooks.kernel, logger: opts.logger?.child({ clone: i }) },
      );
      try {
        hooks.load(vm);
      } catch (err) {
        await vm.dispose();
        throw err;
      }
      out.push({ vm, info: c.info });
    }
  } catch (err) {
    for (const c of out) await c.vm.dispose();
    throw err;
  }
  return out;
}

/**
 * `vmm restore DIR --clone N`: starts N clones (restoreClones) in this process and waits until every one stopped;
 * SIGINT/SIGTERM stop them all. The exit code is the highest of theirs.
 */
export async function runClones(
  snapDir: string,
  count: number,
  opts: CloneOptions & { onStarted?: (clones: { vm: AssembledVm; info: CloneInfo }[]) => void } = {},
): Promise<number> {
  const clones = await restoreClones(snapDir, count, opts);
  const stopAll = (signal: NodeJS.Signals): void => {
    for (const c of clones) void c.vm.machine?.stop({ kind: 'signal', signal }).catch(() => {});
  };
  const sigs = ['SIGINT', 'SIGTERM'] as const;
  for (const s of sigs) process.on(s, stopAll);
  try {
    for (const c of clones) await c.vm.machine!.start();
    opts.onStarted?.(clones);
    const reasons: StopReason[] = await Promise.all(clones.map((c) => c.vm.machine!.stopped));
    return Math.max(...reasons.map(exitCodeFor));
  } finally {
    for (const s of sigs) process.off(s, stopAll);
    for (const c of clones) {
      await c.vm.machine?.stop({ kind: 'api' }).catch(() => {});
      await c.vm.dispose();
    }
  }
}
