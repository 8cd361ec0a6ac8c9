import type { DeviceRegistry } from '../../core/device/device.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { MigrationError } from './errors.js';
import { partsOf, type VmParts } from './vm-parts.js';

/**
 * A device (or transport) that can say when its I/O in flight is done (virtio-blk: requests completed):
 * `quiet` now, or `idle()` once it is.
 */
interface Idling {
  readonly quiet: boolean;
  idle(): Promise<void>;
}

const isIdling = (d: object): d is Idling =>
  typeof (d as Partial<Idling>).idle === 'function' && typeof (d as Partial<Idling>).quiet === 'boolean';

/** Every registered device and, for a virtio transport, the device model it holds as `device`. */
function deviceModels(devices: DeviceRegistry): object[] {
  return devices
    .all()
    .flatMap((d) => [d, (d as { device?: unknown }).device])
    .filter((d): d is object => typeof d === 'object' && d !== null);
}

/**
 * Resolves once no device has I/O in flight. With every vCPU out of guest code no new request can be
 * made, but a kick already queued may still start one: after the waits, one turn of the event loop, and
 * every device must be quiet then (else wait again).
 */
export async function devicesIdle(devices: DeviceRegistry): Promise<void> {
  const all = deviceModels(devices).filter(isIdling);
  for (let pass = 0; pass < 100; pass++) {
    await Promise.all(all.map((d) => d.idle()));
    await new Promise((r) => setImmediate(r)); // let queued kicks reach their devices
    if (all.every((d) => d.quiet)) return;
  }
  throw new MigrationError('State', 'the devices did not become idle (I/O kept starting while the VM was paused)');
}

/**
 * A device whose acknowledged writes may still sit in memory (virtio-blk over a qcow2 disk keeps metadata in its
 * cache until the guest's FLUSH): `persist()` writes them to the backing file and makes them durable.
 */
interface Persisting {
  persist(): Promise<void>;
}

/** Makes every device's acknowledged writes durable in their files (QEMU flushes every drive when a VM stops). */
export async function devicesPersist(devices: DeviceRegistry): Promise<void> {
  const all = deviceModels(devices).filter((d): d is Persisting => typeof (d as Persisting).persist === 'function');
  await Promise.all(all.map((d) => d.persist()));
}

/**
 * Pauses the parts' VM: every vCPU out of guest code, then every device's I/O in flight completed, then (unless
 * `persist` is false) every write the guest was told is done made durable in its file, so that the files match the
 * paused guest (a snapshot, a copy of the disks, another process opening them). A live migration's source passes
 * false: it closes its disks, which flushes them, before the destination opens them.
 */
export async function quiesce(p: VmParts, opts: { persist?: boolean } = {}): Promise<void> {
  const state = p.lifecycle.state;
  if (state !== 'started' && state !== 'paused')
    throw new MigrationError('State', `the VM cannot be paused: it is ${state}`, { state });
  await p.machine.pause();
  await devicesIdle(p.devices);
  if (opts.persist ?? true) await devicesPersist(p.devices);
}

/**
 * Pauses a running VM: every vCPU leaves KVM_RUN and is held, devices stop being driven, their I/O in flight
 * completes (virtio-blk requests) and their disks are flushed (qcow2 metadata reaches the file). Idempotent on a
 * paused VM; refuses a VM that is not running.
 */
export async function pauseVm(vm: AssembledVm): Promise<void> {
  await quiesce(partsOf(vm));
}

/** Resumes a paused VM (devices first, then the vCPUs); a running VM is left as it is. */
export async function resumeVm(vm: AssembledVm): Promise<void> {
  const p = partsOf(vm);
  if (p.lifecycle.state === 'stopped' || p.lifecycle.state === 'created')
    throw new MigrationError('State', `the VM cannot be resumed: it is ${p.lifecycle.state}`);
  await p.machine.resume();
}
