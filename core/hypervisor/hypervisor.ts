import type { AddressSpace } from '../bus/bus.js';
import type { ArchExtensible } from './extension.js';
import type { VcpuState } from './vcpu-state.js';

/** What a VM created by a hypervisor backend can do; checked at start against what the config needs. */
export interface HypervisorCapabilities {
  apiVersion: number;
  irqchip: boolean;
  irqfd: boolean;
  ioeventfd: boolean;
  dirtyLog: boolean;
  maxVcpus: number;
  maxMemorySlots: number;
  /** Raw capability lookup by name (e.g. 'KVM_CAP_IRQ_ROUTING'); 0 when absent. */
  check(name: string): number;
}

/** One guest-physical range backed by host memory (a KVM memory slot). */
export interface MemorySlot {
  slot: number;
  guestAddress: bigint;
  size: bigint;
  hostAddress: bigint;
  readOnly?: boolean;
  logDirtyPages?: boolean;
}

/** One reason a vCPU stopped running guest code. Data views alias the hypervisor's shared run area. */
export type VcpuExit =
  | {
      kind: 'io';
      space: 'pio';
      direction: 'in' | 'out';
      port: number;
      size: 1 | 2 | 4;
      count: number;
      data: Uint8Array;
    }
  | { kind: 'mmio'; address: bigint; isWrite: boolean; data: Uint8Array }
  | { kind: 'hlt' }
  | { kind: 'shutdown' }
  | { kind: 'intr' }
  | { kind: 'system-event'; type: 'shutdown' | 'reset' | 'crash' | 'other'; raw: number }
  | { kind: 'internal-error'; suberror: number }
  | { kind: 'fail-entry'; reason: bigint }
  | { kind: 'debug' }
  | { kind: 'unknown'; reason: number };

/** The `kind` names of VcpuExit. */
export type VcpuExitKind = VcpuExit['kind'];

/** A vCPU's run state as the hypervisor tracks it (KVM's mp_state names). */
export type MpState = 'runnable' | 'uninitialized' | 'init-received' | 'halted' | 'sipi-received' | 'stopped';

/**
 * A virtual CPU, arch-neutral: run, kick, close and its whole state as a VcpuState container. Registers
 * and other arch calls are the arch's extension (`extension(key)` with a key the arch plugin declares).
 * Its methods must be called from the thread that runs it, except kick().
 */
export interface Vcpu extends ArchExtensible {
  readonly index: number;
  /** The whole vCPU state as the arch-neutral container (arch, version, payload). */
  saveState(): VcpuState;
  /** Restores a saved state; untrusted input is validated first (HypervisorError 'InvalidState', nothing set). */
  restoreState(state: unknown): void;
  /** Runs guest code on the calling thread until the next exit. */
  run(): VcpuExit;
  /** Makes a run() in progress (or the next one) return { kind: 'intr' } promptly. Callable from any thread. */
  kick(): void;
  close(): void;
}

/** An eventfd the hypervisor signals (ioeventfd) or that signals the hypervisor (irqfd). */
export interface EventFdLike {
  readonly fd: number;
}

/** Where an ioeventfd listens: address space, address, access length and an optional value match. */
export interface IoEventRegistration {
  space: AddressSpace;
  address: bigint;
  length: 0 | 1 | 2 | 4 | 8;
  /** Only writes of this value signal the fd (when set). */
  datamatch?: bigint;
}

/**
 * A virtual machine, arch-neutral: memory slots, vCPUs, interrupt lines and routing, eventfd wiring, dirty
 * tracking, opaque state. The backend creates the in-kernel irqchip (and what the arch adds to it) with the
 * VM; arch calls (platform addresses, CPUID...) are the arch's extension (`extension(key)`).
 */
export interface Vm extends ArchExtensible {
  readonly capabilities: HypervisorCapabilities;
  setMemorySlot(slot: MemorySlot): void;
  removeMemorySlot(slot: number): void;
  /** Dirty pages of a slot since the last call, one bit per 4 KiB page; the log is cleared. */
  getDirtyLog(slot: number): BigUint64Array;

  /** Drives an interrupt line (GSI) of the in-kernel irqchip. */
  setIrqLine(gsi: number, level: boolean): void;
  /** Routes MSI messages or irqchip pins to GSIs. */
  setGsiRouting(routes: GsiRoute[]): void;
  signalMsi(msg: { address: bigint; data: number }): void;
  registerIrqfd(fd: EventFdLike, gsi: number, resampleFd?: EventFdLike): void;
  unregisterIrqfd(fd: EventFdLike, gsi: number): void;
  registerIoeventfd(fd: EventFdLike, at: IoEventRegistration): void;
  unregisterIoeventfd(fd: EventFdLike, at: IoEventRegistration): void;

  createVcpu(index: number): Vcpu;

  /** Opaque per-VM state (clock, irqchip and the backend's other in-kernel devices) for snapshots. */
  saveState(): Record<string, Uint8Array>;
  restoreState(s: Record<string, Uint8Array>): void;
  close(): void;
}

/** One GSI routing entry: an irqchip pin or an MSI message. */
export type GsiRoute =
  | { gsi: number; kind: 'irqchip'; chip: number; pin: number }
  | { gsi: number; kind: 'msi'; address: bigint; data: number; devid?: number };

/** A hypervisor backend (KVM, or a mock in tests). */
export interface Hypervisor {
  readonly name: string;
  /** Throws a HypervisorError with a clear reason when the backend cannot be used here. */
  probe(): HypervisorCapabilities;
  createVm(): Vm;
}

/**
 * Runs a VM's vCPUs and delivers their PIO/MMIO exits to the buses on the VMM's
 * main thread. A backend may run vCPUs on worker threads (KVM) or inline (tests).
 */
export interface VcpuRunner {
  start(): Promise<void>;
  /**
   * Optional: gets `vcpus` vCPU threads ready ahead of start() (before the vCPUs are created and set up), so that
   * their start-up overlaps the machine's own (reading the kernel). A hint: start() works without it.
   */
  prewarm?(vcpus: number): void;
  /** Kicks every vCPU out of guest code and holds it until resume(). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Stops every vCPU; resolves when all have stopped. */
  stop(): Promise<void>;
  readonly stats: VcpuExitStats;
  /**
   * Optional: decides what follows an exit other than PIO/MMIO (hlt, shutdown,
   * system-event, internal-error, ...): 'stop' ends that vCPU, 'continue' re-enters.
   * The arch machine installs one to turn guest power events into a StopReason.
   */
  setExitHandler?(handler: ((vcpu: number, exit: VcpuExit) => 'continue' | 'stop' | void) | undefined): void;
  /**
   * Optional: each vCPU's run state, read on its own thread (briefly kicking it out of
   * guest code). A machine polls it to notice a guest that halted every CPU with
   * interrupts off — Linux's poweroff when there is no ACPI — and ends the VM as powered off.
   */
  vcpuStates?(): Promise<VcpuRunState[]>;
  /**
   * Optional, cheap (no kick): one counter per vCPU that grows with every exit to userspace
   * other than a kick. A vCPU whose counter moved is not halted for good, so the halt watch
   * need not kick it to ask (each kick costs the guest an exit; ~14 ms in the nested sandbox).
   */
  activity?(): number[];
}

/** One vCPU's run state as a runner reports it (vcpuStates). */
export interface VcpuRunState {
  index: number;
  mpState: MpState;
  /** Whether the vCPU accepts external interrupts now (the arch's interrupt flag). */
  interruptsEnabled: boolean;
  /** The instruction pointer, where the runner can tell (for "where is my guest stuck" reports). */
  rip?: bigint;
}

/** What a runner counts about exits. */
export interface VcpuExitStats {
  /** Per exit kind: count and total nanoseconds spent handling (exit to re-entry). */
  byKind: Record<string, { count: number; totalNs: number }>;
}
