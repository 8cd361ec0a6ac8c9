import { expect } from 'chai';
import * as path from 'node:path';
import { buildLocations } from '../core/plugin/locations.js';
import { planVm } from '../core/vmm/plan.js';

describe('hosts/micro-arm64.yaml', () => {
  it('plans: the arm64 machine, an MMIO UART at 0x09000000, virtio-mmio, no x86 plugin', async () => {
    const plan = await planVm(path.join(buildLocations().repoRoot, 'hosts', 'micro-arm64.yaml'));
    const names = plan.plugins.map((p) => p.plugin.manifest.name);
    expect(names).to.include.members(['kvm', 'arm64', 'serial', 'virtio-mmio', 'boot-timer']);
    expect(names).to.not.include('x86');
    expect(names).to.not.include('acpi');
    const serial = plan.plugins.find((p) => p.instance === 'serial')!.config as Record<string, unknown>;
    expect(serial.mmio).to.equal(0x0900_0000);
    expect(plan.config.boot!.cmdline).to.contain('earlycon');
  });
});
