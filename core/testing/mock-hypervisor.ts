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
import type { CpuidEntry, MpState, MsrEntry, X86Fpu, X86Regs, X86Sregs } from '../hypervisor/x86.js';

/** One recorded call on a mock: which object, which method, with what. */
export interface MockCall {
  target: string;
  method: string;
  args: unknown[];
}

const seg = () => ({
  base: 0n,
  limit: 0xffff,
  selector: 0,
  type: 3,
  present: 1,
  dpl: 0,
  db: 0,
  s: 1,
  l: 0,
  g: 0,
  avl: 0,
  unusable: 0,
});
export const emptyRegs = (): X86Regs => ({
  rax: 0n,
  rbx: 0n,
  rcx: 0n,
  rdx: 0n,
  rsi: 0n,
  rdi: 0n,
  rsp: 0n,
  rbp: 0n,
  r8: 0n,
  r9: 0n,
  r10: 0n,
  r11: 0n,
  r12: 0n,
  r13: 0n,
  r14: 0n,
  r15: 0n,
  rip: 0xfff0n,
  rflags: 2n,
});
export const emptySregs = (): X86Sregs => ({
  cs: seg(),
  ds: seg(),
  es: seg(),
  fs: seg(),
  gs: seg(),
  ss: seg(),
  tr: seg(),
  ldt: seg(),
  gdt: { base: 0n, limit: 0xffff },
  idt: { base: 0n, limit: 0xffff },
  cr0: 0x60000010n,
  cr2: 0n,
  cr3: 0n,
  cr4: 0n,
  cr8: 0n,
  efer: 0n,
  apicBase: 0xfee00900n,
  interruptBitmap: [0n, 0n, 0n, 0n],
});

/**
 * A vCPU double: every call is recorded; run() returns the next scripted exit
 * (and `{ kind: 'hlt' }` once the script is empty). Register state round-trips.
 */
export class MockVcpu implements Vcpu {
  private readonly script: VcpuExit[] = [];
  regs = emptyRegs();
  sregs = emptySregs();
  fpu: X86Fpu = {
    fpr: new Uint8Array(128),
    fcw: 0x37f,
    fsw: 0,
    ftwx: 0,
    lastOpcode: 0,
    lastIp: 0n,
    lastDp: 0n,
    xmm: new Uint8Array(256),
    mxcsr: 0x1f80,
  };
  cpuid: CpuidEntry[] = [];
  msrs = new Map<number, bigint>();
  mpState: MpState = 'runnable';
  lapic = new Uint8Array(1024);
  kicks = 0;
  closed = false;
  runs = 0;

  constructor(
    readonly index: number,
    private readonly log: MockCall[],
  ) {}

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

  getRegs(): X86Regs {
    this.rec('getRegs');
    return { ...this.regs };
  }
  setRegs(r: X86Regs): void {
    this.rec('setRegs', r);
    this.regs = { ...r };
  }
  getSregs(): X86Sregs {
    this.rec('getSregs');
    return structuredClone(this.sregs);
  }
  setSregs(s: X86Sregs): void {
    this.rec('setSregs', s);
    this.sregs = structuredClone(s);
  }
  getFpu(): X86Fpu {
    this.rec('getFpu');
    return structuredClone(this.fpu);
  }
  setFpu(f: X86Fpu): void {
    this.rec('setFpu', f);
    this.fpu = structuredClone(f);
  }
  setCpuid(entries: CpuidEntry[]): void {
    this.rec('setCpuid', entries);
    this.cpuid = [...entries];
  }
  getMsrs(indices: number[]): MsrEntry[] {
    this.rec('getMsrs', indices);
    return indices.map((index) => ({ index, data: this.msrs.get(index) ?? 0n }));
  }
  setMsrs(entries: MsrEntry[]): void {
    this.rec('setMsrs', entries);
    for (const e of entries) this.msrs.set(e.index, e.data);
  }
  getMpState(): MpState {
    this.rec('getMpState');
    return this.mpState;
  }
  setMpState(s: MpState): void {
    this.rec('setMpState', s);
    this.mpState = s;
  }
  getLapic(): Uint8Array {
    this.rec('getLapic');
    return this.lapic.slice();
  }
  setLapic(regs: Uint8Array): void {
    this.rec('setLapic', regs);
    this.lapic = regs.slice();
  }
  saveExtendedState(): Record<string, Uint8Array> {
    this.rec('saveExtendedState');
    return { xsave: new Uint8Array(16) };
  }
  restoreExtendedState(s: Record<string, Uint8Array>): void {
    this.rec('restoreExtendedState', s);
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
  ) {}
  private rec(method: string, ...args: unknown[]): void {
    this.log.push({ target: 'vm', method, args });
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
  createIrqChip(): void {
    this.rec('createIrqChip');
    this.irqchip = true;
  }
  createPit(): void {
    this.rec('createPit');
  }
  setTssAddress(addr: bigint): void {
    this.rec('setTssAddress', addr);
  }
  setIdentityMapAddress(addr: bigint): void {
    this.rec('setIdentityMapAddress', addr);
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
  supportedCpuid(): CpuidEntry[] {
    this.rec('supportedCpuid');
    return [{ function: 0, index: 0, flags: 0, eax: 0xd, ebx: 0, ecx: 0, edx: 0 }];
  }
  createVcpu(index: number): MockVcpu {
    this.rec('createVcpu', index);
    const v = new MockVcpu(index, this.log);
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

  /** `vcpuScript(index)` gives the exits each new vCPU's run() returns, in order. */
  constructor(private readonly vcpuScript?: (index: number) => VcpuExit[]) {}

  probe(): HypervisorCapabilities {
    this.calls.push({ target: 'hypervisor', method: 'probe', args: [] });
    if (this.unavailable) throw new Error(this.unavailable);
    return mockCapabilities();
  }

  createVm(): MockVm {
    this.calls.push({ target: 'hypervisor', method: 'createVm', args: [] });
    const vm = new MockVm(this.calls, this.vcpuScript);
    this.vms.push(vm);
    return vm;
  }

  /** Calls recorded for one target/method, e.g. callsTo('vm', 'setMemorySlot'). */
  callsTo(target: string, method?: string): MockCall[] {
    return this.calls.filter((c) => c.target === target && (method === undefined || c.method === method));
  }
}
