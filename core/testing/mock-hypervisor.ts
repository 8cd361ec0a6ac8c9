import type {
  EventFdLike,
  GsiRoute,
  Hypervisor,
  HypervisorCapabilities,
  IoEventRegistration,
  MemorySlot,
  Vcpu,
  VcpuExit,
  Vm,
} from '../hypervisor/hypervisor.js';
import type { ArchExtensionKey } from '../hypervisor/extension.js';
import { parseVcpuState, type VcpuState } from '../hypervisor/vcpu-state.js';
import { z } from 'zod';

/** One recorded call on a mock: which object, which method, with what. */
export interface MockCall {
  target: string;
  method: string;
  args: unknown[];
}

/**
 * What a mock backend adds for one architecture: the extensions its VMs and vCPUs return by key name
 * (they may record calls in `log`), and how a vCPU's state is saved and restored. An arch plugin ships
 * one (the arch plugin's testing module exports it); without it the mock is arch 'mock', with no extensions.
 */
export interface MockArch {
  readonly arch: string;
  /** Extensions of a new MockVm, by key name. */
  vmExtensions?(vm: MockVm, log: MockCall[]): Record<string, unknown>;
  /** Extensions of a new MockVcpu, by key name. */
  vcpuExtensions?(vcpu: MockVcpu, log: MockCall[]): Record<string, unknown>;
  /** The vCPU's state container (default: an empty payload). */
  saveVcpu?(vcpu: MockVcpu): VcpuState;
  /** Restores a container saveVcpu made; validates untrusted input first. */
  restoreVcpu?(vcpu: MockVcpu, state: unknown): void;
}

/** The arch of a MockHypervisor built without one: no extensions, an empty vCPU payload. */
export const NEUTRAL_MOCK_ARCH: MockArch = { arch: 'mock' };

/**
 * A vCPU double: every call is recorded; run() returns the next scripted exit
 * (and `{ kind: 'hlt' }` once the script is empty). Arch calls are its MockArch's extensions.
 */
export class MockVcpu implements Vcpu {
  private readonly script: VcpuExit[] = [];
  private readonly extensions: Map<string, unknown>;
  kicks = 0;
  closed = false;
  runs = 0;

  constructor(
    readonly index: number,
    private readonly log: MockCall[],
    private readonly mockArch: MockArch = NEUTRAL_MOCK_ARCH,
  ) {
    this.extensions = new Map(Object.entries(mockArch.vcpuExtensions?.(this, log) ?? {}));
  }

  get arch(): string {
    return this.mockArch.arch;
  }

  extension<T>(key: ArchExtensionKey<T>): T | undefined {
    return this.extensions.get(key.name) as T | undefined;
  }

  private rec(method: string, ...args: unknown[]): void {
    this.log.push({ target: `vcpu${this.index}`, method, args });
  }

  /** Appends exits that run() will return in order. */
  queueExits(...exits: VcpuExit[]): this {
    this.script.push(...exits);
    return this;
  }
  get pendingExits(): number {
    return this.script.length;
  }

  saveState(): VcpuState {
    this.rec('saveState');
    return this.mockArch.saveVcpu?.(this) ?? { arch: this.arch, version: 1, payload: {} };
  }
  restoreState(state: unknown): void {
    this.rec('restoreState', state);
    if (this.mockArch.restoreVcpu) this.mockArch.restoreVcpu(this, state);
    else parseVcpuState(state, this.arch, 1, z.strictObject({}));
  }
  run(): VcpuExit {
    this.runs++;
    this.rec('run');
    if (this.kicks > 0) {
      this.kicks--;
      return { kind: 'intr' };
    }
    return this.script.shift() ?? { kind: 'hlt' };
  }
  kick(): void {
    this.rec('kick');
    this.kicks++;
  }
  close(): void {
    this.rec('close');
    this.closed = true;
  }
}

/** The capabilities a MockVm reports: everything on, KVM-like limits. */
export const mockCapabilities = (): HypervisorCapabilities => ({
  apiVersion: 12,
  irqchip: true,
  irqfd: true,
  ioeventfd: true,
  dirtyLog: true,
  maxVcpus: 255,
  maxMemorySlots: 32764,
  check: () => 1,
});

/** A VM double: records every call and keeps memory slots, irq lines, irqfds and ioeventfds as plain data. */
export class MockVm implements Vm {
  readonly capabilities = mockCapabilities();
  private readonly extensions: Map<string, unknown>;
  readonly slots = new Map<number, MemorySlot>();
  readonly irqLines = new Map<number, boolean>();
  readonly irqfds: { fd: number; gsi: number }[] = [];
  readonly ioeventfds: { fd: number; at: IoEventRegistration }[] = [];
  readonly msis: { address: bigint; data: number }[] = [];
  readonly vcpus: MockVcpu[] = [];
  routes: GsiRoute[] = [];
  irqchip = false;
  closed = false;

  constructor(
    private readonly log: MockCall[],
    private readonly vcpuScript?: (index: number) => VcpuExit[],
    private readonly mockArch: MockArch = NEUTRAL_MOCK_ARCH,
  ) {
    this.extensions = new Map(Object.entries(mockArch.vmExtensions?.(this, log) ?? {}));
  }
  private rec(method: string, ...args: unknown[]): void {
    this.log.push({ target: 'vm', method, args });
  }

  get arch(): string {
    return this.mockArch.arch;
  }

  extension<T>(key: ArchExtensionKey<T>): T | undefined {
    return this.extensions.get(key.name) as T | undefined;
  }

  setMemorySlot(slot: MemorySlot): void {
    this.rec('setMemorySlot', slot);
    this.slots.set(slot.slot, { ...slot });
  }
  removeMemorySlot(slot: number): void {
    this.rec('removeMemorySlot', slot);
    this.slots.delete(slot);
  }
  getDirtyLog(slot: number): BigUint64Array {
    this.rec('getDirtyLog', slot);
    const s = this.slots.get(slot);
    return new BigUint64Array(s ? Number((s.size / 4096n + 63n) / 64n) : 0);
  }
  /** What a backend does with the VM when it owns an in-kernel irqchip (kvm does at VM creation). */
  createIrqChip(): void {
    this.rec('createIrqChip');
    this.irqchip = true;
  }
  setIrqLine(gsi: number, level: boolean): void {
    this.rec('setIrqLine', gsi, level);
    this.irqLines.set(gsi, level);
  }
  setGsiRouting(routes: GsiRoute[]): void {
    this.rec('setGsiRouting', routes);
    this.routes = [...routes];
  }
  signalMsi(msg: { address: bigint; data: number }): void {
    this.rec('signalMsi', msg);
    this.msis.push(msg);
  }
  registerIrqfd(fd: EventFdLike, gsi: number, resampleFd?: EventFdLike): void {
    this.rec('registerIrqfd', fd.fd, gsi, resampleFd?.fd);
    this.irqfds.push({ fd: fd.fd, gsi });
  }
  unregisterIrqfd(fd: EventFdLike, gsi: number): void {
    this.rec('unregisterIrqfd', fd.fd, gsi);
    const i = this.irqfds.findIndex((x) => x.fd === fd.fd && x.gsi === gsi);
    if (i >= 0) this.irqfds.splice(i, 1);
  }
  registerIoeventfd(fd: EventFdLike, at: IoEventRegistration): void {
    this.rec('registerIoeventfd', fd.fd, at);
    this.ioeventfds.push({ fd: fd.fd, at });
  }
  unregisterIoeventfd(fd: EventFdLike, at: IoEventRegistration): void {
    this.rec('unregisterIoeventfd', fd.fd, at);
    const i = this.ioeventfds.findIndex(
      (x) => x.fd === fd.fd && x.at.address === at.address && x.at.space === at.space,
    );
    if (i >= 0) this.ioeventfds.splice(i, 1);
  }
  createVcpu(index: number): MockVcpu {
    this.rec('createVcpu', index);
    const v = new MockVcpu(index, this.log, this.mockArch);
    if (this.vcpuScript) v.queueExits(...this.vcpuScript(index));
    this.vcpus[index] = v;
    return v;
  }
  saveState(): Record<string, Uint8Array> {
    this.rec('saveState');
    return { clock: new Uint8Array(8) };
  }
  restoreState(s: Record<string, Uint8Array>): void {
    this.rec('restoreState', s);
  }
  close(): void {
    this.rec('close');
    this.closed = true;
  }
}

/**
 * A hypervisor double for tests: records every call in `calls` (VM and vCPU calls too),
 * hands out MockVm / MockVcpu. `beforeRun` lets a test script vCPU exits as they are created.
 */
export class MockHypervisor implements Hypervisor {
  readonly name = 'mock';
  readonly calls: MockCall[] = [];
  readonly vms: MockVm[] = [];
  /** Set to make probe() fail like a host without the hypervisor. */
  unavailable?: string;

  /**
   * `vcpuScript(index)` gives the exits each new vCPU's run() returns, in order; `arch` adds an
   * architecture's extensions (default: none, arch 'mock').
   */
  constructor(
    private readonly vcpuScript?: (index: number) => VcpuExit[],
    readonly arch: MockArch = NEUTRAL_MOCK_ARCH,
  ) {}

  probe(): HypervisorCapabilities {
    this.calls.push({ target: 'hypervisor', method: 'probe', args: [] });
    if (this.unavailable) throw new Error(this.unavailable);
    return mockCapabilities();
  }

  createVm(): MockVm {
    this.calls.push({ target: 'hypervisor', method: 'createVm', args: [] });
    const vm = new MockVm(this.calls, this.vcpuScript, this.arch);
    this.vms.push(vm);
    return vm;
  }

  /** Calls recorded for one target/method, e.g. callsTo('vm', 'setMemorySlot'). */
  callsTo(target: string, method?: string): MockCall[] {
    return this.calls.filter((c) => c.target === target && (method === undefined || c.method === method));
  }
}
