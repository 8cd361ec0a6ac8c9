import 'reflect-metadata';
import { expect } from 'chai';
import { container as root } from 'tsyringe';
import { planVm } from '../../core/vmm/plan.js';
import { VmLifecycle } from '../../core/lifecycle.js';
import { silentLogger } from '../../core/testing/index.js';
import { Tokens } from '../../core/tokens.js';
import { VmConfigSchema } from '../../core/config/schema.js';
import plugin from './plugin.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';
import { readTables } from './testing.js';

describe('acpi plugin', () => {
  it('registers one AcpiTables service per VM container', async () => {
    const vm = VmConfigSchema.parse({ machine: { memory: '4M' } });
    const ctx = {
      config: {},
      vm,
      logger: silentLogger(),
      lifecycle: new VmLifecycle(),
      baseDir: '.',
      instance: 'acpi',
    };
    const a = root.createChildContainer();
    const b = root.createChildContainer();
    await registerPluginInstance(a, plugin, ctx);
    await registerPluginInstance(b, plugin, ctx);
    const tables = a.resolve(Tokens.AcpiTables.token);
    expect(tables).to.equal(a.resolve(Tokens.AcpiTables.token), 'one per VM: every contributor sees the same set');
    expect(tables).to.not.equal(b.resolve(Tokens.AcpiTables.token));
    tables.contribute({ source: 't', fadt: () => ({ sciInterrupt: 9 }) });
    expect(readTables(tables.build(0x1000n)).get('FACP')![46]).to.equal(9);
    expect(readTables(b.resolve(Tokens.AcpiTables.token).build(0x1000n)).get('FACP')![46]).to.equal(0);
  });

  it('registers before its contributors (x86, virtio-mmio) wherever the YAML lists it; takes no config', async () => {
    const plan = await planVm({
      config: {
        machine: { memory: '64M' },
        boot: { kernel: 'k' },
        plugins: [{ name: 'virtio-mmio' }, { name: 'x86' }, { name: 'acpi' }],
      },
    });
    expect(plan.plugins.map((p) => p.instance)).to.deep.equal(['acpi', 'x86', 'virtio-mmio']);
    let err: unknown;
    await planVm({ config: { machine: { memory: '64M' }, plugins: [{ name: 'acpi', config: { oem: 'x' } }] } }).catch(
      (e: unknown) => (err = e),
    );
    expect(String(err)).to.match(/oem/);
  });
});
