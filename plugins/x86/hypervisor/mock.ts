import type { MpState } from '../../../core/hypervisor/hypervisor.js';
import {
  MockHypervisor,
  type MockArch,
  type MockCall,
  type MockVcpu,
  type MockVm,
} from '../../../core/testing/mock-hypervisor.js';
import type { VcpuExit } from '../../../core/hypervisor/hypervisor.js';
import { X86_ARCH, X86_VCPU, X86_VM, type X86Vcpu, type X86Vm } from './extension.js';
import { restoreX86VcpuState, saveX86VcpuState } from './state.js';
import type { CpuidEntry, MsrEntry, X86Fpu, X86Regs, X86Sregs } from './types.js';
import { bootFpu } from '../cpu/fpu.js';
import { zeroRegs } from '../cpu/registers.js';

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

/** The registers of an x86 vCPU after reset (RIP 0xfff0, RFLAGS 2). */
export const emptyRegs = (): X86Regs => ({ ...zeroRegs(), rip: 0xfff0n });

/** The special registers of an x86 vCPU after reset (real mode, APIC enabled at 0xfee00000). */
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

/** The x86 extension of a MockVcpu: state kept as plain data, every call recorded as `vcpu<i>`. */
export class MockX86Vcpu implements X86Vcpu {
  regs = emptyRegs();
  sregs = emptySregs();
  fpu: X86Fpu = bootFpu();
  cpuid: CpuidEntry[] = [];
  msrs = new Map<number, bigint>();
  mpState: MpState = 'runnable';
  lapic = new Uint8Array(1024);
  extended: Record<string, Uint8Array> = {};

  constructor(
    readonly index: number,
    private readonly log: MockCall[],
  ) {}

  private rec(method: string, ...args: unknown[]): void {
    this.log.push({ target: `vcpu${this.index}`, method, args });
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
  getCpuid(): CpuidEntry[] {
    this.rec('getCpuid');
    return this.cpuid.map((e) => ({ ...e }));
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
    return Object.fromEntries(Object.entries(this.extended).map(([k, v]) => [k, v.slice()]));
  }
  checkExtendedState(s: Record<string, Uint8Array>): void {
    this.rec('checkExtendedState', s);
  }
  restoreExtendedState(s: Record<string, Uint8Array>): void {
    this.rec('restoreExtendedState', s);
    for (const [k, v] of Object.entries(s)) this.extended[k] = v.slice();
  }
}

/** The x86 extension of a MockVm: platform calls recorded as `vm`, a one-leaf supported CPUID. */
export class MockX86Vm implements X86Vm {
  constructor(private readonly log: MockCall[]) {}
  private rec(method: string, ...args: unknown[]): void {
    this.log.push({ target: 'vm', method, args });
  }
  setTssAddress(addr: bigint): void {
    this.rec('setTssAddress', addr);
  }
  setIdentityMapAddress(addr: bigint): void {
    this.rec('setIdentityMapAddress', addr);
  }
  supportedCpuid(): CpuidEntry[] {
    this.rec('supportedCpuid');
    return [{ function: 0, index: 0, flags: 0, eax: 0xd, ebx: 0, ecx: 0, edx: 0 }];
  }
}

/** The x86 MockArch: MockVm/MockVcpu get the x86 extensions; vCPU state is the x86 container. */
export const X86_MOCK_ARCH: MockArch = {
  arch: X86_ARCH,
  vmExtensions: (_vm: MockVm, log) => ({ [X86_VM.name]: new MockX86Vm(log) }),
  vcpuExtensions: (vcpu: MockVcpu, log) => ({ [X86_VCPU.name]: new MockX86Vcpu(vcpu.index, log) }),
  saveVcpu: (vcpu) => saveX86VcpuState(mockX86(vcpu)),
  restoreVcpu: (vcpu, state) => restoreX86VcpuState(mockX86(vcpu), state),
};

/** A MockHypervisor whose VMs and vCPUs have the x86 extensions (scripted exits as MockHypervisor's). */
export function mockX86Hypervisor(vcpuScript?: (index: number) => VcpuExit[]): MockHypervisor {
  return new MockHypervisor(vcpuScript, X86_MOCK_ARCH);
}

/** The x86 state of a mock vCPU made by an x86 mock hypervisor. */
export function mockX86(vcpu: MockVcpu): MockX86Vcpu {
  const x = vcpu.extension(X86_VCPU);
  if (!(x instanceof MockX86Vcpu)) throw new Error(`vCPU ${vcpu.index} is not an x86 mock (use mockX86Hypervisor)`);
  return x;
}
