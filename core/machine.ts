import type { StopReason } from './lifecycle.js';

/**
 * An assembled VM ready to run: the arch plugin builds it from the guest memory,
 * hypervisor, buses and devices in the container, loads the kernel and starts the vCPUs.
 */
export interface Machine {
  start(): Promise<void>;
  /**
   * Optional (restoring a snapshot or a migration): creates the vCPUs without booting, so the VM's StateRegistry
   * walks them and a saved state can be loaded into every part; start() then runs the loaded state instead of
   * loading the kernel. Only on a machine that was never started.
   */
  prepareRestore?(): void;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Stops the vCPUs and destroys devices; resolves once everything is released. */
  stop(reason: StopReason): Promise<void>;
  /**
   * Presses the platform's power button (x86: the ACPI fixed-feature button) so the guest shuts down in order.
   * Returns false when the machine has no button or the guest does not listen to it (its event is not enabled):
   * the caller then stops the VM itself. Absent: no button.
   */
  powerButton?(): boolean;
  /** Resolves with the reason the VM ended (guest poweroff, reset per config, signal, error). */
  readonly stopped: Promise<StopReason>;
}
