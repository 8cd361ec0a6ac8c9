import 'reflect-metadata';
import { expect } from 'chai';
import { container } from 'tsyringe';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';
import { Tokens } from '../../core/tokens.js';
import { assembleVm } from '../../core/vmm/assemble.js';
import { silentLogger } from '../../core/vmm/logger.js';
import { fakeBzImage } from '../x86/testing.js';
import { ACPI_START } from '../x86/platform/acpi.js';
import { readTables } from '../acpi/testing.js';
import { GuestBusDriver } from '../pci/testing-guest.js';
import vfioPlugin, { VFIO_KERNEL } from './plugin.js';
import { FakeVfioFunction, FakeVfioKernel } from './testing.js';

const MOCK_HV = join(buildLocations().repoRoot, 'test/fixtures/mock-hypervisor');

describe('vfio plugin in an assembled cloud-like VM (mock hypervisor, VFIO test double)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfio-assembly-'));
    writeFileSync(join(dir, 'bzImage'), fakeBzImage());
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const assemble = (kernel: FakeVfioKernel, device: string) =>
    assembleVm(
      {
        baseDir: dir,
        config: {
          machine: { vcpus: 1, memory: '64M' },
          boot: { kernel: 'bzImage' },
          plugins: [
            { name: 'kvm' },
            { name: 'pci' },
            { name: 'x86' },
            { name: 'acpi' },
            { name: 'vfio', id: 'nvme0', config: { device, slot: 4 } },
          ],
        },
      },
      {
        replacePlugins: { kvm: MOCK_HV },
        resolveMachine: false,
        logger: silentLogger(),
        parent: container.createChildContainer().register(VFIO_KERNEL, { useValue: kernel }),
      },
    );

  it('plugs the host function into slot 4 with its ids, maps guest RAM for DMA and undoes it all on dispose', async () => {
    const kernel = new FakeVfioKernel();
    const fn = new FakeVfioFunction('0000:00:03.0');
    kernel.add('0000:00:03.0', 5, fn);
    const vm = await assemble(kernel, '0000:00:03.0');
    let disposed = false;
    try {
      const tables = readTables(vm.container.resolve(Tokens.AcpiTables.token).build(ACPI_START));
      const mcfg = tables.get('MCFG')!;
      const guest = new GuestBusDriver(
        vm.container.resolve(Tokens.Bus.token),
        new DataView(mcfg.buffer, mcfg.byteOffset).getBigUint64(44, true),
      );
      expect(guest.cf8Read(4, 0, 0, 4)).to.equal(0x0010_1b36);
      const memory = vm.container.resolve(Tokens.GuestMemory.token);
      const dma = [...kernel.containers[0].dma.entries()].map(([iova, m]) => [iova, m.size]);
      expect(dma).to.deep.equal(memory.regions.map((r) => [r.range.start.value, r.range.length]));
      expect(fn.resets).to.equal(1);
      await vm.dispose();
      disposed = true;
      expect(fn.resets).to.equal(2);
      expect(kernel.containers[0].dma.size).to.equal(0);
      expect(kernel.containers[0].closed).to.equal(true);
      expect(fn.closed).to.equal(true);
    } finally {
      if (!disposed) await vm.dispose();
    }
  });

  it('refuses a device that is not bound for VFIO with one line naming it', async () => {
    const kernel = new FakeVfioKernel();
    let err: Error | undefined;
    try {
      await (await assemble(kernel, '0000:00:07.0')).dispose();
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/\/sys\/bus\/pci\/devices\/0000:00:07.0 has no iommu_group/);
  });
  it('is added and removed at runtime (addDevice/removeDevice), and the same function can come back', async () => {
    const kernel = new FakeVfioKernel();
    const fn = new FakeVfioFunction('0000:00:03.0');
    kernel.add('0000:00:03.0', 5, fn);
    kernel.add('0000:00:05.0', 6, new FakeVfioFunction('0000:00:05.0'));
    const vm = await assemble(kernel, '0000:00:05.0');
    try {
      const pci = vm.container.resolve(Tokens.PciBus.token);
      await vm.addDevice({ name: 'vfio', id: 'hot', config: { device: '0000:00:03.0', slot: 7 } });
      expect(pci.attachments().map((a) => [a.device.id, a.address.device])).to.deep.include(['hot', 7]);
      expect(kernel.containers[1].dma.size).to.be.greaterThan(0);
      await vm.removeDevice('hot');
      expect(pci.attachments().map((a) => a.device.id)).to.deep.equal(['nvme0']);
      expect([fn.resets, kernel.containers[1].dma.size, kernel.groups.get(5)!.open]).to.deep.equal([2, 0, false]);
      await vm.addDevice({ name: 'vfio', id: 'hot2', config: { device: '0000:00:03.0' } });
      expect(pci.attachments().map((a) => a.device.id)).to.include('hot2');
    } finally {
      await vm.dispose();
    }
  });
  it('refuses, before anything starts, a device name that is no address and a balloon beside it', () => {
    const ctx = (balloons: string[]) =>
      ({
        vm: {},
        baseDir: '/',
        instance: 'nvme0',
        providers: (t: string) => (t === 'Balloon' ? balloons : []),
      }) as never;
    expect(vfioPlugin.validate!({ device: '0000:00:03.0', directBars: true }, ctx([]))).to.deep.equal([]);
    const p = vfioPlugin.validate!({ device: 'nvme', directBars: true }, ctx(['balloon0'])) ?? [];
    expect(p.map((x) => x.message).join('\n'))
      .to.match(/neither a PCI address/)
      .and.match(/balloon 'balloon0' cannot give/);
  });
});
