import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { GuestAddress } from '../../core/address.js';
import { createAnonymousMmapMemory } from '../../core/memory/backends/anonymous-mmap.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { KvmHypervisor } from './hypervisor.js';
import { KvmError } from './errors.js';
import { mapGuestMemory } from './memory.js';
import { Asm, LONG_MODE_LAYOUT, setupLongMode, writeLongModeTables } from './testing.js';
import type { KvmVm } from './vm.js';
import { IRQCHIP_IOAPIC, IRQCHIP_PIC_MASTER } from './abi/ioctls.js';
import { offsetOf } from './abi/layout.js';
import { kvm_clock_data, kvm_irqchip } from './abi/structs.js';
import { LinuxEventFdFactory } from '../../core/events/linux-eventfd.js';
import { HypervisorError } from '../../core/hypervisor/errors.js';
import { x86Vcpu, x86Vm } from '../x86/hypervisor/extension.js';
import { getIrqChip } from './x86/vm-state.js';
import { Msr } from '../x86/cpu/msrs.js';
import type { X86VcpuPayload } from '../x86/hypervisor/state.js';

const MIB = 1n << 20n;

/** `out 0x3f8, 0x41`; `in eax, 0x71`; `out 0x80, eax`; `hlt`. */
const outInOutProgram = (): Uint8Array =>
  new Asm().movEdx(0x3f8).movEax(0x41).outDxAl().movEdx(0x71).inEaxDx().movEdx(0x80).outDxEax().hlt().bytes();
const CODE = LONG_MODE_LAYOUT.code;

describe('KVM backend (host /dev/kvm)', function () {
  this.timeout(60_000);
  let hv: KvmHypervisor;
  let vm: KvmVm;
  let mem: GuestMemory;

  before(function () {
    if (!existsSync('/dev/kvm')) this.skip(); // reason: no /dev/kvm on this host
  });
  beforeEach(() => {
    hv = new KvmHypervisor();
    vm = hv.createKvmVm();
    mem = createAnonymousMmapMemory({ regions: [{ start: 0n, size: 4n * MIB }], backend: 'anonymous' });
    mapGuestMemory(vm, mem, { logDirtyPages: true });
    writeLongModeTables(mem);
  });
  afterEach(() => {
    vm.close();
    mem.close();
    hv.close();
  });

  it('probes API version 12 and the capabilities this project relies on', () => {
    const caps = hv.probe();
    expect(caps.apiVersion).to.equal(12);
    expect(caps.irqchip && caps.irqfd && caps.ioeventfd && caps.dirtyLog).to.equal(true);
    expect(caps.maxMemorySlots).to.be.greaterThan(8);
    expect(() => hv.requireCapabilities('IRQFD', 'KVM_CAP_IOEVENTFD', 'USER_MEMORY')).not.to.throw();
  });

  it('names the missing capabilities', () => {
    expect(() => hv.requireCapabilities('IRQFD', 'NO_SUCH_THING')).to.throw(KvmError, /KVM_CAP_NO_SUCH_THING/);
  });

  it('explains a missing device', () => {
    const bad = new KvmHypervisor({ devicePath: '/dev/kvm-does-not-exist' });
    expect(() => bad.probe())
      .to.throw(KvmError, /does not exist/)
      .with.property('kind', 'NoDevice');
  });

  it('round-trips general and special registers', () => {
    const v = vm.createVcpu(0);
    setupLongMode(v, { entry: CODE, regs: { rax: 0x1234n, rdi: (1n << 63n) | 5n } });
    const r = x86Vcpu(v).getRegs();
    expect(r.rax).to.equal(0x1234n);
    expect(r.rdi).to.equal((1n << 63n) | 5n);
    expect(r.rip).to.equal(CODE);
    const s = x86Vcpu(v).getSregs();
    expect(s.cs.l).to.equal(1);
    expect(s.cr3).to.equal(LONG_MODE_LAYOUT.pml4);
    expect(s.efer & 0x500n).to.equal(0x500n);
  });

  it('runs a long-mode guest inline: PIO out and in', () => {
    const v = vm.createVcpu(0);
    const code = outInOutProgram();
    mem.write(GuestAddress.of(CODE), code);
    setupLongMode(v, { entry: CODE });
    let e = v.run();
    expect(e).to.include({ kind: 'io', direction: 'out', port: 0x3f8, size: 1, count: 1 });
    expect(e.kind === 'io' && e.data[0]).to.equal(0x41);
    e = v.run();
    expect(e).to.include({ kind: 'io', direction: 'in', port: 0x71, size: 4 });
    if (e.kind === 'io') new DataView(e.data.buffer, e.data.byteOffset, 4).setUint32(0, 0xcafef00d, true); // answer the IN
    e = v.run();
    expect(e).to.include({ kind: 'io', direction: 'out', port: 0x80, size: 4 });
    expect(e.kind === 'io' && new DataView(e.data.buffer, e.data.byteOffset, 4).getUint32(0, true)).to.equal(
      0xcafef00d,
    );
    expect(v.run().kind).to.equal('hlt');
  });

  it('saves a running vCPU as an x86_64 VcpuState that another VM restores and runs on from', () => {
    const code = outInOutProgram();
    mem.write(GuestAddress.of(CODE), code);
    vm.createIrqChip();
    const a = vm.createVcpu(0);
    setupLongMode(a, { entry: CODE, regs: { rbx: 0xfeedn, rsi: (1n << 63n) | 7n } });
    expect(a.run()).to.include({ kind: 'io', direction: 'out', port: 0x3f8 });
    const saved = a.saveState();
    expect(saved).to.include({ arch: 'x86_64', version: 1 });
    const p = saved.payload as X86VcpuPayload;
    expect(p.regs.rbx).to.equal(0xfeedn);
    expect(Object.keys(p.extended)).to.include.members(['kvm.xsave.v1', 'kvm.vcpu_events.v1']);

    const vm2 = hv.createKvmVm();
    try {
      mapGuestMemory(vm2, mem);
      vm2.createIrqChip();
      const b = vm2.createVcpu(0);
      // hostile states are refused before anything is set
      const before = x86Vcpu(b).getRegs();
      expect(() => b.restoreState({ ...saved, arch: 'aarch64' })).to.throw(HypervisorError, /arch 'aarch64'/);
      expect(() => b.restoreState({ ...saved, version: 9 })).to.throw(HypervisorError, /version 9/);
      const badRip = { ...saved, payload: { ...p, regs: { ...p.regs, rip: -1n } } };
      expect(() => b.restoreState(badRip)).to.throw(HypervisorError, /payload\.regs\.rip/);
      const badBlob = { ...saved, payload: { ...p, extended: { ...p.extended, 'kvm.xsave.v1': new Uint8Array(3) } } };
      expect(() => b.restoreState(badBlob)).to.throw(KvmError, /kvm\.xsave\.v1/);
      expect(x86Vcpu(b).getRegs()).to.deep.equal(before);

      b.restoreState(saved);
      const again = b.saveState().payload as X86VcpuPayload;
      expect(again.regs).to.deep.equal(p.regs);
      expect(again.sregs).to.deep.equal(p.sregs);
      expect(again.fpu).to.deep.equal(p.fpu);
      expect(again.mpState).to.equal(p.mpState);
      const noTsc = (m: X86VcpuPayload['msrs']) => m.filter((e) => e.index !== Msr.IA32_TSC);
      expect(noTsc(again.msrs)).to.deep.equal(noTsc(p.msrs));
      // the restored vCPU continues where the first one stopped: the IN, then the OUT of its answer
      let e = b.run();
      expect(e).to.include({ kind: 'io', direction: 'in', port: 0x71, size: 4 });
      if (e.kind === 'io') new DataView(e.data.buffer, e.data.byteOffset, 4).setUint32(0, 0x5a5a1234, true);
      e = b.run();
      expect(e).to.include({ kind: 'io', direction: 'out', port: 0x80 });
      expect(e.kind === 'io' && Buffer.from(e.data).readUInt32LE(0)).to.equal(0x5a5a1234);
      expect(x86Vcpu(b).getRegs().rsi).to.equal((1n << 63n) | 7n);
    } finally {
      vm2.close();
    }
  });

  it('reports MMIO reads and writes outside memory slots', () => {
    const v = vm.createVcpu(0);
    const mmio = 0x1000_0000n;
    const code = new Asm()
      .movRbx(mmio)
      .movEax(0xdeadbeef)
      .storeEax()
      .movRbx(mmio + 8n)
      .loadEax()
      .movEdx(0x80)
      .outDxEax()
      .hlt()
      .bytes();
    mem.write(GuestAddress.of(CODE), code);
    setupLongMode(v, { entry: CODE });
    let e = v.run();
    expect(e).to.deep.include({ kind: 'mmio', address: mmio, isWrite: true });
    expect(e.kind === 'mmio' && Buffer.from(e.data).readUInt32LE(0)).to.equal(0xdeadbeef);
    e = v.run();
    expect(e).to.deep.include({ kind: 'mmio', address: mmio + 8n, isWrite: false });
    if (e.kind === 'mmio') {
      expect(e.data.length).to.equal(4);
      Buffer.from(e.data.buffer, e.data.byteOffset, 4).writeUInt32LE(0x600dcafe);
    }
    e = v.run();
    expect(e.kind === 'io' && Buffer.from(e.data).readUInt32LE(0)).to.equal(0x600dcafe);
  });

  it('logs dirty pages written by the guest, and clears the log on read', () => {
    const v = vm.createVcpu(0);
    const a = new Asm();
    for (const page of [0x100n, 0x107n, 0x2ffn]) a.movRbx(page << 12n).storeEax();
    a.hlt();
    mem.write(GuestAddress.of(CODE), a.bytes());
    setupLongMode(v, { entry: CODE });
    vm.getDirtyLog(0); // forget the pages written by the test itself
    expect(v.run().kind).to.equal('hlt');
    const bits = vm.getDirtyLog(0);
    const dirty = (p: number): boolean => ((bits[p >> 6] >> BigInt(p & 63)) & 1n) === 1n;
    expect(dirty(0x100) && dirty(0x107) && dirty(0x2ff)).to.equal(true);
    expect(dirty(0x101)).to.equal(false);
    const again = vm.getDirtyLog(0);
    expect(dirty(0x101)).to.equal(false);
    expect((again[0x100 >> 6] >> BigInt(0x100 & 63)) & 1n).to.equal(0n);
  });

  it('signals an ioeventfd on a guest write without an exit to userspace', () => {
    const fds = new LinuxEventFdFactory();
    const pio = fds.create(),
      mmio = fds.create();
    try {
      vm.registerIoeventfd(pio, { space: 'pio', address: 0x510n, length: 2, datamatch: 0x42n });
      vm.registerIoeventfd(mmio, { space: 'mmio', address: 0x2000_0000n, length: 4 });
      const v = vm.createVcpu(0);
      const code = new Asm()
        .movEdx(0x510)
        .movEax(0x41)
        .outDxAx()
        .movEax(0x42)
        .outDxAx()
        .movRbx(0x2000_0000n)
        .storeEax()
        .movEdx(0x80)
        .outDxAl()
        .hlt()
        .bytes();
      mem.write(GuestAddress.of(CODE), code);
      setupLongMode(v, { entry: CODE });
      // 0x41 does not match the datamatch: that one exits to userspace.
      let e = v.run();
      expect(e).to.include({ kind: 'io', port: 0x510, size: 2 });
      expect(pio.read()).to.equal(0n);
      e = v.run(); // 0x42 matched (no exit), the MMIO store hit the ioeventfd (no exit): next exit is port 0x80
      expect(e).to.include({ kind: 'io', port: 0x80 });
      expect(pio.read()).to.equal(1n);
      expect(mmio.read()).to.equal(1n);
      vm.unregisterIoeventfd(pio, { space: 'pio', address: 0x510n, length: 2, datamatch: 0x42n });
    } finally {
      pio.close();
      mmio.close();
    }
  });

  it('raises an irqchip line through an irqfd', async () => {
    vm.createIrqChip();
    const fd = new LinuxEventFdFactory().create();
    try {
      const irr = (): number => getIrqChip(vm, IRQCHIP_PIC_MASTER).readUInt8(offsetOf(kvm_irqchip, 'chip.pic.irr'));
      expect(irr() & (1 << 4)).to.equal(0);
      vm.registerIrqfd(fd, 4);
      fd.write(1n);
      // KVM injects from a workqueue: wait for it (bounded) rather than racing it.
      for (let i = 0; i < 400 && (irr() & (1 << 4)) === 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(irr() & (1 << 4)).to.equal(1 << 4);
      vm.unregisterIrqfd(fd, 4);
    } finally {
      fd.close();
    }
  });

  it('saves and restores VM state blobs, rejecting foreign ones', () => {
    vm.createIrqChip(); // the x86 part creates the PIT with it
    const st = vm.saveState();
    expect(Object.keys(st)).to.include.members(['kvm.clock.v1', 'kvm.irqchip.ioapic.v1', 'kvm.pit2.v1']);
    // changed blobs go into the kernel: GET_IRQCHIP / GET_CLOCK read back what was restored
    const entry5 = offsetOf(kvm_irqchip, 'chip.ioapic.redirtbl') + 5 * 8;
    const imr = offsetOf(kvm_irqchip, 'chip.pic.imr');
    const clockAt = offsetOf(kvm_clock_data, 'clock');
    const ioapic = Buffer.from(st['kvm.irqchip.ioapic.v1']!);
    const pic = Buffer.from(st['kvm.irqchip.pic_master.v1']!);
    const clock = Buffer.from(st['kvm.clock.v1']!);
    const origEntry = ioapic.readBigUInt64LE(entry5),
      origImr = pic.readUInt8(imr);
    ioapic.writeBigUInt64LE(0x1_0000_0042n, entry5); // masked, vector 0x42
    pic.writeUInt8(origImr ^ 0xa5, imr);
    const later = clock.readBigUInt64LE(clockAt) + 3_600_000_000_000n; // an hour ahead
    clock.writeBigUInt64LE(later, clockAt);
    vm.restoreState({
      ...st,
      'kvm.irqchip.ioapic.v1': ioapic,
      'kvm.irqchip.pic_master.v1': pic,
      'kvm.clock.v1': clock,
    });
    expect(getIrqChip(vm, IRQCHIP_IOAPIC).readBigUInt64LE(entry5)).to.equal(0x1_0000_0042n);
    expect(getIrqChip(vm, IRQCHIP_PIC_MASTER).readUInt8(imr)).to.equal(origImr ^ 0xa5);
    const clockNow = () => Buffer.from(vm.saveState()['kvm.clock.v1']!).readBigUInt64LE(clockAt);
    expect(clockNow() >= later, 'the clock an hour ahead').to.equal(true);
    // and the saved state brings the old values back
    vm.restoreState(st);
    expect(getIrqChip(vm, IRQCHIP_IOAPIC).readBigUInt64LE(entry5)).to.equal(origEntry);
    expect(getIrqChip(vm, IRQCHIP_PIC_MASTER).readUInt8(imr)).to.equal(origImr);
    expect(clockNow() < later, 'the clock back').to.equal(true);
    expect(() => vm.restoreState({ 'kvm.clock.v1': new Uint8Array(3) })).to.throw(KvmError, /must be/);
    // a state with one bad blob sets nothing, not even the good blobs before it
    expect(() => vm.restoreState({ 'kvm.irqchip.ioapic.v1': ioapic, 'kvm.pit2.v1': new Uint8Array(5) })).to.throw(
      KvmError,
      /kvm\.pit2\.v1/,
    );
    expect(getIrqChip(vm, IRQCHIP_IOAPIC).readBigUInt64LE(entry5)).to.equal(origEntry);
    expect(() => vm.restoreState({ bogus: new Uint8Array(3) })).to.throw(KvmError, /unknown/);
  });

  it('offers the TSC-deadline timer in the supported CPUID once the in-kernel LAPIC exists', () => {
    const leaf1 = () =>
      x86Vm(vm)
        .supportedCpuid()
        .find((e) => e.function === 1)!;
    const tscDeadline = (): number => (leaf1().ecx >>> 24) & 1;
    // (kernels from 6.14 report it themselves, older ones never: see apic-cpuid.ts)
    vm.createIrqChip();
    expect(vm.capabilities.check('KVM_CAP_TSC_DEADLINE_TIMER'), 'every KVM since 3.2 has it').to.be.greaterThan(0);
    expect(tscDeadline()).to.equal(1);
    // what the vCPU is given is what the guest's CPUID returns (KVM keeps it as set)
    const v = x86Vcpu(vm.createVcpu(0));
    v.setCpuid(x86Vm(vm).supportedCpuid());
    expect((v.getCpuid().find((e) => e.function === 1)!.ecx >>> 24) & 1).to.equal(1);
  });

  it('gives each vCPU its index as APIC ID', () => {
    vm.createIrqChip();
    for (let i = 0; i < 3; i++) {
      const lapic = x86Vcpu(vm.createVcpu(i)).getLapic();
      expect(Buffer.from(lapic).readUInt32LE(0x20) >>> 24).to.equal(i);
    }
  });

  it('rejects unaligned or overlapping memory slots', () => {
    const base = mem.regions[0].hostAddress;
    expect(() => vm.setMemorySlot({ slot: 5, guestAddress: 0x1001n, size: 0x1000n, hostAddress: base })).to.throw(
      KvmError,
      /aligned/,
    );
    expect(() => vm.setMemorySlot({ slot: 5, guestAddress: 0x1000n, size: 0x1000n, hostAddress: base })).to.throw(
      KvmError,
      /overlaps slot 0/,
    );
  });
});
