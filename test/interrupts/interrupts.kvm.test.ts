import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { LinuxEventFdFactory } from '../../core/events/linux-eventfd.js';
import { VmInterrupts } from '../../core/interrupts/vm-interrupts.js';
import { PlatformResources } from '../../core/platform/platform-resources.js';
import { KvmHypervisor } from '../../plugins/kvm/hypervisor.js';
import { IRQCHIP_PIC_MASTER } from '../../plugins/kvm/abi/ioctls.js';
import { offsetOf } from '../../plugins/kvm/abi/layout.js';
import { kvm_irqchip } from '../../plugins/kvm/abi/structs.js';
import type { KvmVm } from '../../plugins/kvm/vm.js';
import { getIrqChip } from '../../plugins/kvm/x86/vm-state.js';
import { x86PlatformLayout } from '../../plugins/x86/platform/resource-layout.js';

/** Polls `cond` (KVM injects irqfd writes from a workqueue): bounded, never a fixed sleep. */
async function until(cond: () => boolean): Promise<boolean> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

describe('Interrupts service on KVM (host /dev/kvm)', function () {
  this.timeout(60_000);
  let hv: KvmHypervisor;
  let vm: KvmVm;
  let irqs: VmInterrupts;

  before(function () {
    if (!existsSync('/dev/kvm')) this.skip(); // reason: no /dev/kvm on this host
  });
  beforeEach(() => {
    hv = new KvmHypervisor();
    vm = hv.createKvmVm();
    vm.createIrqChip();
    const resources = new PlatformResources(x86PlatformLayout(256n << 20n));
    irqs = new VmInterrupts({ resources, vm: () => vm, eventFds: new LinuxEventFdFactory() });
  });
  afterEach(() => {
    vm.close();
    hv.close();
  });

  it('writes a routing table with MSI routes that keeps the irqchip pins working (GSI 4 reaches PIC pin 4)', async () => {
    const msi = irqs.msiGroup({ owner: 'nic', count: 2 });
    msi.update(0, { address: 0xfee0_0000n, data: 0x41 });
    msi.unmask(0); // KVM_SET_GSI_ROUTING with 40 irqchip entries + 1 MSI entry, then KVM_IRQFD on GSI 24
    msi.update(1, { address: 0xfee0_0000n, data: 0x42 });
    msi.unmask(1);
    msi.trigger(0);
    msi.mask(1);
    msi.vector(1).notifier!.write(1n);
    expect(msi.pending(1)).to.equal(true);
    msi.unmask(1);
    expect(msi.pending(1)).to.equal(false);

    // A legacy irqfd line after the table was replaced: GSI 4 still reaches PIC pin 4 (fails without irqchip routes).
    const com1 = irqs.legacy({ owner: 'serial', line: 'com1', irqfd: true });
    const picIrr = (): number => getIrqChip(vm, IRQCHIP_PIC_MASTER).readUInt8(offsetOf(kvm_irqchip, 'chip.pic.irr'));
    expect(picIrr() & (1 << 4)).to.equal(0);
    com1.trigger();
    expect(await until(() => (picIrr() & (1 << 4)) !== 0), 'PIC IRR bit 4').to.equal(true);
    com1.dispose();
    msi.dispose();
  });

  it('registers a level line with a resample eventfd and a plain line without irqfd', () => {
    const level = irqs.legacy({ owner: 'intx', mode: 'level', irqfd: true });
    expect(level.notifier).to.not.equal(undefined);
    level.trigger();
    level.dispose();
    const kbd = irqs.legacy({ owner: 'i8042', line: 'keyboard', mode: 'level' });
    kbd.setLevel(true);
    kbd.setLevel(false);
    kbd.dispose();
  });
});
