import type { Disposable } from '../bus/bus.js';

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
  /**
   * Releases fds, timers and files. Called only through the Disposable that DeviceRegistry.add
   * returned (the plugin returns it from register/attach, so it runs in reverse registration
   * order at VM teardown); may be called twice while machines still destroy devices on stop.
   */
  destroy?(): void | Promise<void>;
}

/** A device that can return to its power-on state when asked (reset()). */
export interface Resettable {
  reset(): void;
}
/** A device whose own activity (timers, backend I/O) can be paused and resumed together with the VM. */
export interface Pausable {
  pause(): void | Promise<void>;
  resume(): void | Promise<void>;
}

/**
 * A device that reports counters (contract C4; read by the API's vm.counters and GET /metrics): a flat map of
 * name -> number, each monotonic (never decreasing while the device lives), integers, cheap to compute (called on
 * every request). Names are camelCase words, optionally dotted (`transport.interrupts`).
 */
export interface Countable {
  counters(): Record<string, number>;
}

/** True when a device (or any object, e.g. a VirtioDevice behind its transport) implements Countable. */
export const hasCounters = <T extends object>(d: T): d is T & Countable =>
  typeof (d as Partial<Countable>).counters === 'function';

/** True when a device implements Resettable. */
export const isResettable = (d: Device): d is Device & Resettable =>
  typeof (d as Partial<Resettable>).reset === 'function';
/** True when a device implements Pausable (both pause and resume). */
export const isPausable = (d: Device): d is Device & Pausable =>
  typeof (d as Partial<Pausable>).pause === 'function' && typeof (d as Partial<Pausable>).resume === 'function';

/** The VM's devices, in registration order. */
export interface DeviceRegistry {
  /**
   * Adds a device (ids are unique). The returned Disposable removes it and awaits its destroy():
   * return it from the plugin's register/attach, it is the device's one teardown path.
   */
  add(device: Device): Disposable;
  get(id: string): Device | undefined;
  all(): readonly Device[];
}
