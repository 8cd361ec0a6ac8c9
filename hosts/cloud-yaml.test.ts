import { expect } from 'chai';
import * as path from 'node:path';
import { buildLocations } from '../core/plugin/locations.js';
import { planVm } from '../core/vmm/plan.js';

describe('hosts/cloud.yaml', () => {
  it('plans: 2 vCPUs, 512 MiB, PCI + virtio-pci + hotplug + the power button, no virtio-mmio, no pci=off', async () => {
    const plan = await planVm(path.join(buildLocations().repoRoot, 'hosts', 'cloud.yaml'));
    const { machine, boot } = plan.config;
    expect([machine.vcpus, machine.memory]).to.deep.equal([2, 512n << 20n]);
    expect(boot!.cmdline).to.not.match(/pci=off/);
    const names = plan.plugins.map((p) => p.plugin.manifest.name);
    for (const n of ['kvm', 'acpi', 'x86', 'pci', 'pci-hotplug', 'virtio-pci', 'serial', 'rtc', 'raw-disk', 'qcow'])
      expect(names).to.include(n);
    expect(names).to.not.include('virtio-mmio');
    const cfg = (n: string) => plan.plugins.find((p) => p.instance === n)!.config as Record<string, unknown>;
    expect(cfg('x86').powerButton).to.equal(true);
    expect(cfg('disk0')).to.include({ format: 'qcow2' });
    expect(cfg('net0').backend).to.deep.include({ kind: 'tap' });
  });
});
