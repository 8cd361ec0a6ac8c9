import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Vcpu } from '../../core/hypervisor/hypervisor.js';
import { StateError } from '../../core/state/errors.js';
import type { StateRegistry } from '../../core/state/registry.js';
import { VcpuSnapshot } from '../../core/state/vcpu-snapshot.js';
import { restoreVmState, saveVmState } from '../../core/state/vm-state.js';
import type { SavedState } from '../../core/state/snapshottable.js';
import { Tokens } from '../../core/tokens.js';
import { assembleVm, type AssembledVm } from '../../core/vmm/assemble.js';
import { silentLogger } from '../../core/vmm/logger.js';
import { x86Vcpu } from '../../plugins/x86/hypervisor/extension.js';
import { x86VcpuStateCheck } from '../../plugins/x86/state.js';
import { fakeBzImage } from '../../plugins/x86/testing.js';

/**
 * A micro-like VM (no net: it needs a tap) with a fake kernel; it is assembled, never started. Each VM has its
 * own disk file of the same size (a disk is locked by the VM that opened it read-write).
 */
function config(disk: string) {
  return {
    machine: { vcpus: 1, memory: '64M' },
    boot: { kernel: 'bzImage' },
    plugins: [
      { name: 'kvm' },
      { name: 'acpi' },
      { name: 'x86' },
      { name: 'serial', config: { port: 'COM1', console: { kind: 'none' } } },
      { name: 'i8042' },
      { name: 'rtc' },
      { name: 'boot-timer' },
      { name: 'raw-disk' },
      { name: 'virtio-mmio' },
      { name: 'virtio-blk', config: { path: disk } },
    ],
  };
}

const PIC = 'kvm.irqchip.pic_master.v1';

/** Reads CMOS byte `index` through the VM's PIO bus, as the guest would. */
function cmos(vm: AssembledVm, index: number, value?: number): number {
  const bus = vm.container.resolve(Tokens.Bus.token);
  bus.write('pio', 0x70n, Uint8Array.of(index));
  if (value !== undefined) bus.write('pio', 0x71n, Uint8Array.of(value));
  const d = new Uint8Array(1);
  bus.read('pio', 0x71n, d);
  return d[0]!;
}

/**
 * The saved states without what moves with time: the kvmclock, the PIT (KVM stamps each channel's
 * count_load_time with the host time when the PIT state is set) and each vCPU's TSC (MSR 0x10). Their
 * names and sizes still count.
 */
const withoutClock = (list: SavedState[]): unknown =>
  list.map((s) => {
    if (s.id === 'vm') {
      const blobs = { ...(s.data as { blobs: Record<string, string> }).blobs };
      for (const k of ['kvm.clock.v1', 'kvm.pit2.v1'])
        if (blobs[k] !== undefined) blobs[k] = `${blobs[k].length} chars`;
      return { ...s, data: { blobs } };
    }
    if (s.id.startsWith('vcpu')) {
      const d = s.data as { payload: { msrs: { index: number; data: unknown }[] } };
      const msrs = d.payload.msrs.map((m) => (m.index === 0x10 ? { ...m, data: 'moves' } : m));
      return { ...s, data: { ...d, payload: { ...d.payload, msrs } } };
    }
    return s;
  });

describe('VM state: a whole assembled VM on host KVM (kvm tier)', function () {
  this.timeout(60_000);
  let dir: string;
  before(function () {
    if (!existsSync('/dev/kvm')) this.skip(); // reason: no /dev/kvm on this host
    dir = mkdtempSync(join(tmpdir(), 'vm-state-'));
    writeFileSync(join(dir, 'bzImage'), fakeBzImage());
    for (const d of ['a.raw', 'b.raw']) writeFileSync(join(dir, d), new Uint8Array(1 << 20));
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('walks every part in order, saves it as JSON and restores it into a second VM built from the same config', async () => {
    const a = await assembleVm({ config: config('a.raw'), baseDir: dir }, { logger: silentLogger() });
    const b = await assembleVm({ config: config('b.raw'), baseDir: dir }, { logger: silentLogger() });
    try {
      const regA = a.container.resolve(Tokens.StateRegistry.token);
      const regB = b.container.resolve(Tokens.StateRegistry.token);
      // The machine adds its vCPUs when it starts; these VMs never start, so the test adds vCPU 0 itself.
      const vcpu = (vm: AssembledVm, reg: StateRegistry): Vcpu => {
        const v = vm.container.resolve(Tokens.Vm.token).createVcpu(0);
        reg.add(new VcpuSnapshot(v, x86VcpuStateCheck(v)), 'vcpu');
        return v;
      };
      const [va, vb] = [vcpu(a, regA), vcpu(b, regB)];
      const ids = regA.all().map((s) => s.id);
      expect(ids).to.deep.equal([
        'vm',
        'vcpu0',
        'serial',
        'i8042',
        'rtc',
        'boot-timer',
        'virtio-mmio:virtio-blk',
        'machine',
      ]);
      expect(regB.all().map((s) => s.id)).to.deep.equal(ids);

      cmos(a, 0x50, 0xab);
      x86Vcpu(va).setRegs({ ...x86Vcpu(va).getRegs(), rax: 0x1234_5678_9abc_def0n });
      a.container.resolve(Tokens.Vm.token).setIrqLine(3, true); // an unused ISA line: the PIC latches it in a
      const pic = (list: SavedState[]) => (list[0]!.data as { blobs: Record<string, string> }).blobs[PIC];
      expect(pic(saveVmState(regA)), 'the irqchips differ before the restore').to.not.equal(pic(saveVmState(regB)));
      const saved = JSON.parse(JSON.stringify(saveVmState(regA))) as SavedState[];
      expect(cmos(b, 0x50)).to.equal(0);
      const vmBlobs = Object.keys((saved[0]!.data as { blobs: object }).blobs).sort();
      expect(vmBlobs).to.include.members(['kvm.clock.v1', 'kvm.irqchip.ioapic.v1']);

      // A hostile list changes nothing in b; then the real one restores every part.
      const hostile = saved.map((s) => (s.id === 'machine' ? { ...s, data: { ...(s.data as object), vcpus: 2 } } : s));
      expect(() => restoreVmState(regB, hostile)).to.throw(StateError, /machine: .* 2 vCPUs, this machine has 1/);
      expect(cmos(b, 0x50)).to.equal(0);

      restoreVmState(regB, saved);
      expect(cmos(b, 0x50), 'the RTC NVRAM byte written in a reached b').to.equal(0xab);
      expect(x86Vcpu(vb).getRegs().rax, "a's register reached b's vCPU").to.equal(0x1234_5678_9abc_def0n);
      expect(withoutClock(saveVmState(regB))).to.deep.equal(withoutClock(saveVmState(regA)));
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});
