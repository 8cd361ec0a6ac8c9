import * as path from 'node:path';
import type { NetBackend } from './backend.js';
import { DgramSocketBackend } from './socket.js';
import { StreamSocketBackend } from './stream.js';
import { TapBackend } from './tap.js';
import type { EventLoop } from '../../../core/events/event-loop.js';
import type { NetBackendConfig } from '../config.js';

/**
 * Opens the backend a config names (the one place that picks a mechanism). Paths resolve against baseDir.
 * The stream backend watches `loop` for room to write and reports its peer's end in `onClosed`.
 */
export function openBackend(
  cfg: NetBackendConfig,
  queuePairs: number,
  baseDir: string,
  loop?: EventLoop,
  onClosed?: (why: string) => void,
): NetBackend {
  if (cfg.kind === 'stream') return StreamSocketBackend.connect(path.resolve(baseDir, cfg.path), loop, onClosed);
  if (cfg.kind === 'tap') return TapBackend.open({ name: cfg.name, create: cfg.create, fds: cfg.fds, queuePairs });
  if (cfg.unix)
    return DgramSocketBackend.open(
      { kind: 'unix', path: path.resolve(baseDir, cfg.unix.path), peer: path.resolve(baseDir, cfg.unix.peer) },
      loop,
    );
  return DgramSocketBackend.open({ kind: 'udp', local: cfg.udp!.local, remote: cfg.udp!.remote }, loop);
}

/**
 * Whether a destination built before its migration's source let go opens this backend late (LateBackend): a tap named
 * in the config (the source's, attached to it until it let go). Inherited fds are this process's own; a name
 * template makes a new tap; sockets are not opened late (their VMs are built after the source let go).
 * plugins/migration/preassemble.ts keeps the same rule for whether such a VM is built early.
 */
export function opensLate(cfg: NetBackendConfig): cfg is Extract<NetBackendConfig, { kind: 'tap' }> & { name: string } {
  return cfg.kind === 'tap' && cfg.fds === undefined && cfg.name !== undefined && !cfg.name.includes('%');
}
