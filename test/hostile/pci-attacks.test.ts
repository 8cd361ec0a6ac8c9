/**
 * The hostile-guest program for PCI (hosts/guestkit/tools/hostile-pci.c) replayed in TypeScript (pci-program.ts)
 * register by register against the cloud host's real parts over test doubles: the pci plugin's root bus (ECAM and
 * 0xCF8/0xCFC on a RangeBus), two virtio-pci functions over virtio-blk (victim, witness) with MSI-X through the VM's
 * Interrupts service, and the ACPI hotplug controller's register window. Every key must end as pci-attacks.ts says,
 * the witness keeps working and the log stays short.
 */
import { expect } from 'chai';
import { GuestRange } from '../../core/address.js';
import { RangeBus } from '../../core/bus/range-bus.js';
import { VmInterrupts } from '../../core/interrupts/vm-interrupts.js';
import { PlatformResources } from '../../core/platform/platform-resources.js';
import { MockDiskBackend } from '../../core/testing/mock-disk.js';
import { MockHypervisor, type MockVm } from '../../core/testing/mock-hypervisor.js';
import { testPlatformLayout } from '../../core/testing/test-layout.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { PciRootBus } from '../../plugins/pci/root-bus.js';
import { recordingLogger } from '../../plugins/pci/test-fixtures.js';
import { GuestBusDriver } from '../../plugins/pci/testing-guest.js';
import { HotplugController } from '../../plugins/pci-hotplug/controller.js';
import { HOTPLUG_WINDOW_SIZE } from '../../plugins/pci-hotplug/registers.js';
import { VirtioBlk } from '../../plugins/virtio-blk/device.js';
import { PM1_CNT_PORT, PM1_EVT_PORT } from '../../plugins/x86/platform/acpi.js';
import { PM1_BASE, PM1_SIZE, Pm1Registers } from '../../plugins/x86/platform/pm.js';
import { VirtioPciHost } from '../../plugins/virtio-pci/host.js';
import { FakeEventSystem } from '../../plugins/virtio/testing.js';
import { PCI_ATTACKS, PCI_LOG_BOUND } from './pci-attacks.js';
import { HostilePciProgram } from './pci-program.js';

/** The cloud host's PCI side over test doubles, with the guest's view of the bus. */
function cloudPci() {
  const vm = new MockHypervisor().createVm() as MockVm;
  (vm.capabilities as { ioeventfd: boolean }).ioeventfd = false;
  (vm.capabilities as { irqfd: boolean }).irqfd = true;
  const events = new FakeEventSystem();
  const memory = testGuestMemory(4 << 20);
  const resources = new PlatformResources(testPlatformLayout());
  const interrupts = new VmInterrupts({ resources, vm: () => vm, eventFds: events.factory, eventLoop: events.loop });
  const bus = new RangeBus();
  const logger = recordingLogger();
  const root = new PciRootBus({ bus, resources, interrupts, logger, running: () => true });
  const host = new VirtioPciHost({
    pci: root,
    interrupts,
    eventFds: events.factory,
    vm: () => vm,
    memory: () => memory,
    logger,
  });
  const disks = { victim: new MockDiskBackend(1 << 20), witness: new MockDiskBackend(4 << 20) };
  disks.victim.data.set(new TextEncoder().encode('VICTIM!!'), 0);
  for (let i = 0; i < disks.witness.data.length; i++) disks.witness.data[i] = (i * 7 + 3) & 0xff;
  const devices = Object.entries(disks).map(
    ([id, disk]) => new VirtioBlk({ id, disk, serial: id, queueSize: 256 }, events.loop),
  );
  for (const d of devices) host.attachVirtioDevice(d);
  const hotplug = new HotplugController({ attachments: () => root.attachments(), notify: () => undefined, logger });
  const window = resources.allocate('mmio32', { owner: 'pci-hotplug', size: BigInt(HOTPLUG_WINDOW_SIZE) });
  bus.register('mmio', GuestRange.of(window.start, HOTPLUG_WINDOW_SIZE), hotplug.bus, 'pci-hotplug');
  let poweredOff = 0;
  const pm1 = new Pm1Registers(() => poweredOff++);
  bus.register('pio', GuestRange.of(PM1_BASE, PM1_SIZE), pm1.bus, 'acpi-pm1');
  pm1.bus.write(BigInt(PM1_CNT_PORT - PM1_BASE), Uint8Array.of(1, 0)); // Linux's value: SCI_EN
  const guest = new GuestBusDriver(bus, root.ecam!.start);
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      events.run();
      await Promise.all(devices.map((d) => d.idle()));
    }
    events.run();
  };
  const poweredOffCount = (): number => poweredOff;
  return { vm, memory, root, guest, logger, hotplug, window: window.start, settle, disks, devices, poweredOffCount };
}

describe('test/hostile: the hostile-guest program’s PCI attacks against the cloud host’s PCI parts', function () {
  this.timeout(60_000);

  it('every attack ends as pci-attacks.ts says; the witness keeps working and the log stays short', async () => {
    const t = cloudPci();
    const ecam = t.root.ecam!.start;
    const target = { guest: t.guest, memory: t.memory, ecam, settle: t.settle };
    const pm1 = { evt: PM1_EVT_PORT, cnt: PM1_CNT_PORT };
    const program = new HostilePciProgram(target, 1, 2, t.window, pm1);
    const wBar = t.root.barBase(2, 0);
    const out = await program.run();
    const wrong = Object.entries(PCI_ATTACKS)
      .filter(([name, want]) => {
        const got = out.get(name) ?? '(none)';
        return want instanceof RegExp ? !want.test(got) : got !== want;
      })
      .map(([name, want]) => `${name}=${out.get(name)} (want ${String(want)})`);
    expect(wrong, [...out].map(([k, v]) => `${k}=${v}`).join('\n')).to.deep.equal([]);
    // the witness is where it was and serves its driver: a read through its own queue
    expect(t.root.barBase(2, 0)).to.equal(wBar);
    expect(t.poweredOffCount(), 'no sleep type but S5 powers off').to.equal(0);
    const witness = new HostilePciProgram(target, 2, 1, 0n);
    expect((await witness.run()).get('v-good-after')).to.match(/^used:0:/);
    const kinds = new Map<string, number>();
    for (const w of t.logger.warnings) {
      const k = w.replace(/0x[0-9a-f]+|\d+/g, 'N');
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    expect(t.logger.warnings.length, [...kinds].map(([k, n]) => `${n} x ${k}`).join('\n')).to.be.at.most(PCI_LOG_BOUND);
  });
});
