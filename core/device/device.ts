/**
 * A device's lifecycle plus small optional capabilities (Cloud Hypervisor's
 * Pausable -> Snapshottable -> Migratable): the VMM walks every device and calls
 * what it supports. Check for a capability with the guards below; state (Snapshottable,
 * isSnapshottable) is core/state's contract.
 */
export interface Device {
  /** Unique within the VM, e.g. 'serial0', 'virtio-blk0'. */
  readonly id: string;
  /** Called once everything is registered, before vCPUs start. */
  activate?(): void | Promise<void>;
  /** Called when the VM stops; releases fds, timers and files. */
  destroy?(): void | Promise<void>;
}

export interface Resettable {
  reset(): void;
}
export interface Pausable {
  pause(): void | Promise<void>;
  resume(): void | Promise<void>;
}

export const isResettable = (d: Device): d is Device & Resettable =>
  typeof (d as Partial<Resettable>).reset === 'function';
export const isPausable = (d: Device): d is Device & Pausable =>
  typeof (d as Partial<Pausable>).pause === 'function' && typeof (d as Partial<Pausable>).resume === 'function';

/** The VM's devices, in registration order. */
export interface DeviceRegistry {
  add(device: Device): void;
  get(id: string): Device | undefined;
  all(): readonly Device[];
}
