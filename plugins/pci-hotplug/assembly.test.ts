import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';
import { Tokens } from '../../core/tokens.js';
import { assembleVm } from '../../core/vmm/assemble.js';
import { silentLogger } from '../../core/vmm/logger.js';
import { skipUnlessCi } from '../../test/setup/environment.js';
import { IASL, disassemble, normalizeAsl } from '../acpi/testing.js';
import { readTables } from '../acpi/testing.js';
import { fakeBzImage } from '../x86/testing.js';
import { ACPI_START } from '../x86/platform/acpi.js';

const MOCK_HV = join(buildLocations().repoRoot, 'test/fixtures/mock-hypervisor');

describe('pci-hotplug in an assembled cloud-like VM (mock hypervisor)', function () {
  this.timeout(60_000);
  let dir: string;
  before(function () {
    if (!IASL) skipUnlessCi(this, 'iasl is not installed (Debian acpica-tools)');
    dir = mkdtempSync(join(tmpdir(), 'pci-hotplug-assembly-'));
    writeFileSync(join(dir, 'bzImage'), fakeBzImage());
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it("adds its slots to the pci plugin's PCI0 (one DSDT ACPICA reads), on a line of its own", async () => {
    const vm = await assembleVm(
      {
        baseDir: dir,
        config: {
          machine: { vcpus: 1, memory: '64M' },
          boot: { kernel: 'bzImage' },
          plugins: [
            { name: 'kvm' },
            { name: 'acpi' },
            { name: 'x86', config: { powerButton: true } },
            { name: 'pci' },
            { name: 'pci-hotplug' },
          ],
        },
      },
      { replacePlugins: { kvm: MOCK_HV }, resolveMachine: false, logger: silentLogger(), enforceManifests: true },
    );
    try {
      expect(vm.container.isRegistered(Tokens.PciHotplug.token, true)).to.equal(true);
      const lines = vm.container.resolve(Tokens.Resources.token).allocations('irq');
      const ged = lines.find((a) => a.owner === 'pci-hotplug')!;
      expect(lines.filter((a) => a.start === ged.start)).to.have.length(1);
      expect(lines.find((a) => a.owner === 'acpi-sci')?.start).to.equal(9n);
      const asl = normalizeAsl(
        disassemble(readTables(vm.container.resolve(Tokens.AcpiTables.token).build(ACPI_START)).get('DSDT')!),
      );
      expect(asl).to.include(normalizeAsl('Scope (\\_SB.PCI0) { Method (PCNT, 0, NotSerialized)'));
      expect(asl).to.include(
        normalizeAsl(
          `Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { 0x${ged.start.toString(16).toUpperCase().padStart(8, '0')}, }`,
        ),
      );
      expect(asl.indexOf('Device(PCI0)')).to.be.lessThan(asl.indexOf('Device(S01)'));
    } finally {
      await vm.dispose();
    }
  });
});
