import { expect } from 'chai';
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { RangeBus } from '../../core/bus/range-bus.js';
import { LinuxEventFdFactory } from '../../core/events/linux-eventfd.js';
import { VmInterrupts } from '../../core/interrupts/vm-interrupts.js';
import { PlatformResources } from '../../core/platform/platform-resources.js';
import { KvmHypervisor } from '../kvm/hypervisor.js';
import type { KvmVm } from '../kvm/vm.js';
import { x86PlatformLayout } from '../x86/platform/resource-layout.js';
import { PciReg } from './config/registers.js';
import { PciRootBus } from './root-bus.js';
import { GuestBusDriver } from './testing-guest.js';
import { recordingLogger, testFunction } from './test-fixtures.js';

describe('pci bus over real KVM interrupts (host /dev/kvm)', function () {
  this.timeout(120_000);
  let hv: KvmHypervisor;
  let vm: KvmVm;

  before(function () {
    if (!existsSync('/dev/kvm')) this.skip(); // reason: no /dev/kvm on this host
  });
  beforeEach(() => {
    hv = new KvmHypervisor();
    vm = hv.createKvmVm();
    vm.createIrqChip();
  });
  afterEach(() => {
    vm.close();
    hv.close();
  });

  it('INTx lines get irqfds with resample; MSI-X table garbage (any address and data) becomes KVM routes, never a throw', () => {
    const resources = new PlatformResources(x86PlatformLayout(256n << 20n));
    const interrupts = new VmInterrupts({ resources, vm: () => vm, eventFds: new LinuxEventFdFactory() });
    const bus = new RangeBus();
    const logger = recordingLogger();
    const root = new PciRootBus({ bus, resources, interrupts, logger, running: () => true });
    const guest = new GuestBusDriver(bus, root.ecam!.start);
    expect(root.intx.gsis).to.deep.equal([5, 6, 10, 11]);
    const a = testFunction('a');
    root.add(a.fn, { slot: 1 });
    const group = interrupts.msiGroup({ owner: 'a', count: 2, devid: 1 << 3 });
    a.msix.connect(group);
    guest.cf8Write(1, 0, PciReg.COMMAND, 2, 0x7);
    const bar0 = root.barBase(1, 0)!;
    // INTx through the shared level line's irqfd (KVM_IRQFD with a resample eventfd): no throw, line level kept.
    a.fn.setIntx(true);
    a.fn.setIntx(false);
    const msixCap = a.msix.cap.offset;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            entry: fc.integer({ min: 0, max: 1 }),
            field: fc.constantFrom(0, 4, 8, 12),
            value: fc.integer({ min: 0, max: 0xffff_ffff }),
            control: fc.constantFrom(0x8000, 0xc000, 0x0000, 0x8000),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        (ops) => {
          for (const o of ops) {
            guest.write('mmio', bar0 + 0x800n + BigInt(o.entry * 16 + o.field), 4, o.value);
            guest.cf8Write(1, 0, msixCap + 2, 2, o.control);
            a.msix.trigger(o.entry);
          }
          for (let v = 0; v < 2; v++) {
            if (a.msix.deliverable(v) && !group.vector(v).masked)
              expect(group.vector(v).message).to.deep.equal(a.msix.message(v));
            if (!a.msix.deliverable(v)) expect(group.vector(v).masked).to.equal(true);
          }
        },
      ),
      { numRuns: 200 },
    );
    // A proper message still goes through KVM afterwards.
    guest.write('mmio', bar0 + 0x800n, 8, 0xfee0_0000n);
    guest.write('mmio', bar0 + 0x808n, 4, 0x31);
    guest.write('mmio', bar0 + 0x80cn, 4, 0);
    guest.cf8Write(1, 0, msixCap + 2, 2, 0x8000);
    expect(group.vector(0).masked).to.equal(false);
    expect(group.vector(0).message).to.deep.equal({ address: 0xfee0_0000n, data: 0x31 });
    expect(a.msix.trigger(0)).to.equal(true);
    expect(logger.warnings).to.deep.equal([]);
    group.dispose();
    root.dispose();
  });
});
