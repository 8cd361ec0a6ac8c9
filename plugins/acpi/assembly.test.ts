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
import { madtEntries, readTables } from './testing.js';

const MOCK_HV = join(buildLocations().repoRoot, 'test/fixtures/mock-hypervisor');
const text = (b: Uint8Array): string => String.fromCharCode(...b);

describe('acpi plugin in an assembled micro-like VM (mock hypervisor)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'acpi-assembly-'));
    writeFileSync(join(dir, 'bzImage'), fakeBzImage());
    for (const d of ['a.raw', 'b.raw']) writeFileSync(join(dir, d), new Uint8Array(1 << 20));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('x86 and virtio-mmio contribute to the one table set of the VM, whatever order the YAML lists them in', async () => {
    const vm = await assembleVm(
      {
        baseDir: dir,
        config: {
          machine: { vcpus: 2, memory: '64M' },
          boot: { kernel: 'bzImage' },
          plugins: [
            { name: 'kvm' },
            { name: 'virtio-mmio' },
            { name: 'x86' },
            { name: 'raw-disk' },
            { name: 'virtio-blk', id: 'vda', config: { path: 'a.raw' } },
            { name: 'virtio-blk', id: 'vdb', config: { path: 'b.raw' } },
            { name: 'acpi' },
          ],
        },
      },
      { replacePlugins: { kvm: MOCK_HV }, resolveMachine: false, logger: silentLogger() },
    );
    try {
      const tables = readTables(vm.container.resolve(Tokens.AcpiTables.token).build(ACPI_START));
      const dsdt = text(tables.get('DSDT')!);
      expect(dsdt).to.include('GSIS').and.include('VR00').and.include('VR01').and.not.include('VR02');
      expect(dsdt.match(/LNRO0005/g)).to.have.length(2);
      expect(madtEntries(tables.get('APIC')!).filter((e) => e[0] === 0)).to.have.length(2);
    } finally {
      await vm.dispose();
    }
  });
});
