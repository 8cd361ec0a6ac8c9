import 'reflect-metadata';
import { expect } from 'chai';
import { container as root } from 'tsyringe';
import { RangeBus } from '../../core/bus/range-bus.js';
import { OrderedDeviceRegistry } from '../../core/device/ordered-registry.js';
import { VmLifecycle } from '../../core/lifecycle.js';
import type { PciDevice } from '../../core/pci/index.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';
import { RecordingInterrupts, silentLogger } from '../../core/testing/index.js';
import { Tokens } from '../../core/tokens.js';
import { VmConfigSchema } from '../../core/config/schema.js';
import type { PciHotplugController } from '../../core/vmm/hotplug.js';
import { AcpiTableSet } from '../acpi/table-set.js';
import { readTables } from '../acpi/testing.js';
import { TestPciBus } from '../pci/testing.js';
import plugin, { PciHotplugConfigSchema } from './plugin.js';
import { readManifestFile } from '../../core/plugin/manifest.js';
import { buildLocations } from '../../core/plugin/locations.js';
import * as path from 'node:path';
import { HotplugRegister } from './registers.js';
import { emptyPciFunction } from './testing.js';

const fn = (id: string): PciDevice => emptyPciFunction(id);

const manifestPath = path.join(buildLocations().repoRoot, 'plugins', 'pci-hotplug', 'vmm-plugin.json');

describe('pci-hotplug plugin', () => {
  it('wires window, GED line, DSDT and the PciHotplug token (manifest enforced); disposing frees them', async () => {
    const c = root.createChildContainer();
    const pci = new TestPciBus();
    const tables = new AcpiTableSet();
    const bus = new RangeBus(silentLogger());
    const interrupts = new RecordingInterrupts();
    c.register(Tokens.PciBus.token, { useValue: pci });
    c.register(Tokens.AcpiTables.token, { useValue: tables });
    c.register(Tokens.Bus.token, { useValue: bus });
    c.register(Tokens.Resources.token, { useValue: interrupts.resources });
    c.register(Tokens.Interrupts.token, { useValue: interrupts });
    c.register(Tokens.DeviceRegistry.token, { useValue: new OrderedDeviceRegistry() });
    const disposables = await registerPluginInstance(
      c,
      plugin,
      {
        config: PciHotplugConfigSchema.parse({}),
        vm: VmConfigSchema.parse({}),
        lifecycle: new VmLifecycle(),
        baseDir: '.',
        instance: 'hotplug',
        logger: silentLogger(),
      },
      { manifest: readManifestFile(manifestPath), manifestPath, enforce: true },
    );
    const window = interrupts.resources.allocations('mmio32').find((a) => a.owner === 'hotplug')!;
    const line = [...interrupts.lines()].find(([, owner]) => owner === 'hotplug')![0];
    const ctl = c.resolve<PciHotplugController>(Tokens.PciHotplug.token);
    const dsdt = readTables(tables.build(0xe0000n)).get('DSDT')!;
    expect(Buffer.from(dsdt).includes('PHPR')).to.equal(true);
    expect(Buffer.from(dsdt).includes('ACPI0013')).to.equal(true);

    pci.running = true;
    const a = pci.add(fn('disk'), { slot: 6 });
    await new Promise((r) => setImmediate(r));
    expect(interrupts.levels(line)).to.deep.equal([true, false], 'one edge on the GED line');
    const word = new Uint8Array(4);
    bus.read('mmio', window.start + BigInt(HotplugRegister.PCIU), word);
    expect(new DataView(word.buffer).getUint32(0, true)).to.equal(1 << 6);
    const ejected = ctl.requestEject(a, 60_000);
    new DataView(word.buffer).setUint32(0, 1 << 6, true);
    bus.write('mmio', window.start + BigInt(HotplugRegister.B0EJ), word);
    await ejected;

    for (const d of disposables.reverse()) await d.dispose();
    expect(interrupts.lines().has(line)).to.equal(false);
    expect(bus.registrations('mmio')).to.deep.equal([]);
    expect(readTables(tables.build(0xe0000n)).has('DSDT') && true).to.equal(true);
    expect(Buffer.from(readTables(tables.build(0xe0000n)).get('DSDT')!).includes('PHPR')).to.equal(false);
  });
});
