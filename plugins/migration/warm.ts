import type { Logger } from '../../core/logger.js';
import { readSnapshot, takeSnapshot } from '../../core/state/persist.js';
import type { StateRegistry } from '../../core/state/registry.js';
import { VcpuSnapshot } from '../../core/state/vcpu-snapshot.js';

/** A vCPU state of the kinds a real payload holds (numbers, bigints, bytes, lists of objects); never loaded. */
const STAND_IN = {
  arch: 'warm',
  version: 1,
  payload: { regs: { rip: 1n, rflags: 2n }, xsave: new Uint8Array(64), msrs: [{ index: 16, value: 3n }] },
};

/** What a warm-up touched: the parts whose save (and check) ran, and those that refused (warm-ups are best-effort). */
export interface Warmed {
  saved: string[];
  checked: string[];
  /** vCPUs whose own state was loaded back into them (the destination's native set calls). */
  loaded: string[];
  failed: string[];
}

/**
 * Runs the state code a stop-and-copy needs once before the stop, so the first real save or load does not pay for
 * zod compiling each schema (its JIT), V8 compiling the codecs and the first native calls (tens of ms on a host,
 * seconds under the sandbox's TCG). Every result is thrown away.
 *
 * - The source (`running`: its vCPUs are in guest code): every part's save and encode except the vCPUs', whose
 *   state can only be read with the vCPU out of KVM_RUN: for them only the encoder, on a stand-in state.
 * - A destination or restore whose VM is built and its vCPUs created, not started: every part's save, encode,
 *   decode and check, and each vCPU's own fresh state loaded back into it (the state that counts loads later and
 *   overwrites all of it). Nothing else is loaded.
 *
 * Never throws: a part that cannot save now (e.g. a device that wants to be quiet) is listed in `failed`.
 */
export function warmStates(registry: StateRegistry, how: 'running' | 'built', logger?: Logger): Warmed {
  const w: Warmed = { saved: [], checked: [], loaded: [], failed: [] };
  let parts;
  try {
    parts = registry.all();
  } catch {
    return w; // two parts share an id: the real save reports it
  }
  for (const s of parts) {
    const vcpu = s instanceof VcpuSnapshot;
    try {
      if (vcpu && how === 'running') {
        // its registers cannot be read now: the container's encoder alone, on a stand-in payload of the same kinds
        takeSnapshot({ id: s.id, stateSpec: s.stateSpec, saveState: () => STAND_IN, loadState: () => {} });
        w.saved.push(`${s.id} (encoder)`);
        continue;
      }
      const saved = takeSnapshot(s);
      w.saved.push(s.id);
      if (how === 'running') continue;
      if (!(s instanceof VcpuSnapshot)) {
        readSnapshot(s, saved);
        w.checked.push(s.id);
        continue;
      }
      s.loadState(readSnapshot(s, saved));
      w.checked.push(s.id);
      w.loaded.push(s.id);
    } catch (err) {
      w.failed.push(s.id);
      logger?.debug({ err, part: s.id }, 'migration: warming the state code failed for a part (harmless)');
    }
  }
  return w;
}

/**
 * The source's vCPU saves, warmed for real: their native get calls and the encoder of a real payload are cold until
 * the first save (tens of ms on a host, about 200 ms in the nested sandbox), and a running vCPU cannot be read. So
 * the machine is paused once for one save of each vCPU (thrown away) and resumed at once: a short stall of the
 * pre-copy, out of the downtime, as an auto-converge hold is. Never throws; the machine runs again afterwards
 * (unless its resume fails, which is thrown: a guest left paused must not migrate on as if it ran).
 */
export async function warmVcpuSaves(
  machine: { pause(): Promise<void>; resume(): Promise<void> },
  registry: StateRegistry,
  logger?: Logger,
): Promise<Warmed> {
  const w: Warmed = { saved: [], checked: [], loaded: [], failed: [] };
  let vcpus: VcpuSnapshot[];
  try {
    vcpus = registry.all().filter((s): s is VcpuSnapshot => s instanceof VcpuSnapshot);
  } catch {
    return w;
  }
  if (!vcpus.length) return w;
  try {
    await machine.pause();
  } catch (err) {
    logger?.debug({ err }, 'migration: no pause to warm the vCPU saves (harmless)');
    w.failed.push(...vcpus.map((v) => v.id));
    return w;
  }
  try {
    for (const v of vcpus) {
      try {
        takeSnapshot(v);
        w.saved.push(v.id);
      } catch (err) {
        w.failed.push(v.id);
        logger?.debug({ err, part: v.id }, 'migration: warming a vCPU save failed (harmless)');
      }
    }
  } finally {
    await machine.resume();
  }
  return w;
}
