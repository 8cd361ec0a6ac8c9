import { expect } from 'chai';
import { GuestRange } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { deviceSysfsPath, mapGuestRam, openVfioDevice } from './open.js';
import { FakeVfioContainer, FakeVfioFunction, FakeVfioKernel } from './testing.js';

const memory = (regions: { start: bigint; size: bigint; host: bigint; readOnly?: boolean }[]): GuestMemory =>
  ({
    regions: regions.map((r) => ({
      range: GuestRange.of(r.start, r.size),
      hostAddress: r.host,
      readOnly: r.readOnly ?? false,
    })),
  }) as unknown as GuestMemory;

describe('vfio: opening a device and mapping guest RAM', () => {
  it('names the device by PCI address or sysfs path, and refuses anything else', () => {
    expect(deviceSysfsPath('0000:00:03.0')).to.equal('/sys/bus/pci/devices/0000:00:03.0');
    expect(deviceSysfsPath('00:1F.7')).to.equal('/sys/bus/pci/devices/0000:00:1f.7');
    expect(deviceSysfsPath('/sys/bus/pci/devices/0000:00:03.0/')).to.equal('/sys/bus/pci/devices/0000:00:03.0');
    expect(() => deviceSysfsPath('nvme0')).to.throw(/neither a PCI address/);
    expect(() => deviceSysfsPath('/sys/../etc/passwd')).to.throw(/neither a PCI address/);
  });

  it('opens container, group and device, picking the type-1 v2 IOMMU', () => {
    const k = new FakeVfioKernel();
    const fn = new FakeVfioFunction('0000:00:03.0');
    k.add('0000:00:03.0', 7, fn);
    const o = openVfioDevice(k, '/sys/bus/pci/devices/0000:00:03.0');
    expect(o.device).to.equal(fn);
    expect(o.group.group).to.equal(7);
    expect((o.container as FakeVfioContainer).iommu).to.equal(3);
    o.dispose();
    expect((o.container as FakeVfioContainer).closed).to.equal(true);
    expect(fn.closed).to.equal(true);
    expect(k.groups.get(7)!.open).to.equal(false);
  });

  it('refuses a group that is not viable with what to do, closing what it opened', () => {
    const k = new FakeVfioKernel();
    k.add('0000:00:03.0', 4, new FakeVfioFunction('0000:00:03.0'), false);
    expect(() => openVfioDevice(k, '/sys/bus/pci/devices/0000:00:03.0')).to.throw(
      /IOMMU group 4 of 0000:00:03.0 is not viable: bind every device in \/sys\/kernel\/iommu_groups\/4\/devices to vfio-pci/,
    );
    expect(k.containers[0].closed).to.equal(true);
    expect(k.groups.get(4)!.open).to.equal(false);
    expect(() => openVfioDevice(k, '/sys/bus/pci/devices/0000:00:09.0')).to.throw(/has no iommu_group/);
  });

  it('maps every RAM region at its guest address (read-only regions readable only) and unmaps them all', () => {
    const c = new FakeVfioContainer();
    const d = mapGuestRam(
      c,
      memory([
        { start: 0n, size: 0x8000_0000n, host: 0x7f00_0000_0000n },
        { start: 0x1_0000_0000n, size: 0x4000_0000n, host: 0x7f80_0000_0000n },
        { start: 0xfff0_0000n, size: 0x10_0000n, host: 0x7e00_0000_0000n, readOnly: true },
      ]),
    );
    expect([...c.dma.entries()]).to.deep.equal([
      [0n, { vaddr: 0x7f00_0000_0000n, size: 0x8000_0000n, flags: 3 }],
      [0x1_0000_0000n, { vaddr: 0x7f80_0000_0000n, size: 0x4000_0000n, flags: 3 }],
      [0xfff0_0000n, { vaddr: 0x7e00_0000_0000n, size: 0x10_0000n, flags: 1 }],
    ]);
    d.dispose();
    expect(c.dma.size).to.equal(0);
  });

  it('undoes a partial mapping when one region cannot be mapped', () => {
    const c = new FakeVfioContainer();
    expect(() =>
      mapGuestRam(
        c,
        memory([
          { start: 0n, size: 0x1000n, host: 0x7f00_0000_0000n },
          { start: 0x2000n, size: 0x1000n, host: 0n },
        ]),
      ),
    ).to.throw(/has no host mapping/);
    expect(c.dma.size).to.equal(0);
  });
});
