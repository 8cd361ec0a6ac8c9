import { expect } from 'chai';
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
import { GuestBusDriver } from './testing-guest.js';
import { PciReg } from './config/registers.js';
import { testFunction } from './test-fixtures.js';

const MOCK_HV = join(buildLocations().repoRoot, 'test/fixtures/mock-hypervisor');
const text = (b: Uint8Array): string => String.fromCharCode(...b);

describe('pci plugin in an assembled cloud-like VM (mock hypervisor)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pci-assembly-'));
    writeFileSync(join(dir, 'bzImage'), fakeBzImage());
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('provides PciBus with the host bridge on 0xCF8/ECAM, x86 INTx lines, PCI0 in the DSDT and an MCFG table', async () => {
    const vm = await assembleVm(
      {
        baseDir: dir,
        config: {
          machine: { vcpus: 1, memory: '64M' },
          boot: { kernel: 'bzImage' },
          plugins: [{ name: 'kvm' }, { name: 'pci' }, { name: 'x86' }, { name: 'acpi' }],
        },
      },
      { replacePlugins: { kvm: MOCK_HV }, resolveMachine: false, logger: silentLogger() },
    );
    try {
      const pci = vm.container.resolve(Tokens.PciBus.token);
      const bus = vm.container.resolve(Tokens.Bus.token);
      const tables = readTables(vm.container.resolve(Tokens.AcpiTables.token).build(ACPI_START));
      const mcfg = tables.get('MCFG')!;
      const ecam = new DataView(mcfg.buffer, mcfg.byteOffset).getBigUint64(44, true);
      const guest = new GuestBusDriver(bus, ecam);
      expect(guest.cf8Read(0, 0, 0, 4)).to.equal(0x0d57_8086);
      expect(guest.ecamRead(0, 0, 0, 4)).to.equal(0x0d57_8086);
      const dsdt = text(tables.get('DSDT')!);
      expect(dsdt).to.include('PCI0').and.include('_PRT').and.include('PCIM').and.include('GSIS');
      const { fn } = testFunction('disk');
      const att = pci.add(fn);
      expect(pci.attachments()).to.deep.equal([att]);
      expect(fn.context!.intx!.gsi).to.equal(6); // slot 1 INTA# -> 'pci-intb' of the x86 layout
      expect(guest.cf8Read(1, 0, PciReg.INTERRUPT_LINE, 1)).to.equal(6);
      expect(guest.cf8Read(1, 0, 0, 4)).to.equal(0x1042_1af4);
    } finally {
      await vm.dispose();
    }
  });
});
