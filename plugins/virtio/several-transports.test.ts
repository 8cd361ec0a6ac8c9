import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assembleVm, type AssembledVm } from '../../core/vmm/assemble.js';
import { silentLogger } from '../../core/vmm/logger.js';

/**
 * Several virtio transports in one VM, assembled for real from a config: two fake transports
 * ('mmio', 'pci', plain-JS plugins outside the tree) and the real virtio-blk and virtio-net
 * plugins choosing between them (their own `transport`, the VM's `virtio.transport`, or the
 * VM's only transport).
 */
describe('several virtio transports in one VM', () => {
  let dir: string;
  let vm: AssembledVm | undefined;

  /** A transport plugin named `name` that records what attaches to it in globalThis.__attached[name]. */
  function writeFakeTransport(name: string): string {
    const d = path.join(dir, `fake-${name}`);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(
      path.join(d, 'vmm-plugin.json'),
      JSON.stringify({
        name: `fake-${name}`,
        version: '1.0.0',
        provides: ['VirtioTransport'],
        requires: [],
        entry: './plugin.js',
      }),
    );
    fs.writeFileSync(
      path.join(d, 'plugin.js'),
      `export default { register(c) {
        const seen = ((globalThis.__attached ??= {})[${JSON.stringify(name)}] = []);
        c.registerInstance(Symbol.for('tsvmm.VirtioTransport'), {
          name: ${JSON.stringify(name)},
          attachVirtioDevice(device) {
            seen.push(device.id);
            const interrupt = { signalUsedQueue() {}, signalConfigChange() {} };
            return { deviceId: device.id, transport: this.name, location: 'fake', interrupt, dispose() {} };
          },
        });
      } };\n`,
    );
    return d;
  }

  function attached(name: string): string[] {
    return (globalThis as unknown as { __attached?: Record<string, string[]> }).__attached?.[name] ?? [];
  }

  function disk(id: string, transport?: string): object {
    fs.writeFileSync(path.join(dir, `${id}.img`), Buffer.alloc(1 << 20));
    return { name: 'virtio-blk', id, config: { path: `${id}.img`, ...(transport ? { transport } : {}) } };
  }

  async function assemble(config: object): Promise<AssembledVm> {
    vm = await assembleVm({ config, baseDir: dir, file: path.join(dir, 'vm.yaml') }, { logger: silentLogger() });
    return vm;
  }

  async function refusal(config: object): Promise<Error> {
    try {
      await assemble(config);
    } catch (e) {
      return e as Error;
    }
    return expect.fail('the VM assembled');
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-transports-'));
    delete (globalThis as { __attached?: unknown }).__attached;
  });
  afterEach(async () => {
    await vm?.dispose();
    vm = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const base = (): object[] => [
    { name: 'raw-disk' },
    { path: writeFakeTransport('mmio') },
    { path: writeFakeTransport('pci') },
  ];

  function nic(id: string, transport?: string): object {
    const backend = { kind: 'socket', udp: { local: '127.0.0.1:0', remote: '127.0.0.1:9' } };
    return { name: 'virtio-net', id, config: { backend, ...(transport ? { transport } : {}) } };
  }

  it('each disk and NIC attaches where its config or the VM default says', async () => {
    await assemble({
      virtio: { transport: 'mmio' },
      plugins: [...base(), disk('disk1', 'pci'), disk('disk2'), disk('disk3', 'mmio'), nic('net0', 'pci'), nic('net1')],
    });
    expect(attached('pci')).to.deep.equal(['disk1', 'net0']);
    expect(attached('mmio')).to.deep.equal(['disk2', 'disk3', 'net1']);
  });

  it('the VM default can name the other transport', async () => {
    await assemble({ virtio: { transport: 'pci' }, plugins: [...base(), disk('disk1'), nic('net0')] });
    expect(attached('pci')).to.deep.equal(['disk1', 'net0']);
    expect(attached('mmio')).to.deep.equal([]);
  });

  it('an unknown transport name is a config error naming the device and the transports present', async () => {
    const e = await refusal({ plugins: [...base(), disk('disk1', 'pcie')] });
    expect(e.message).to.equal(
      "plugin 'disk1' failed to register: disk1: unknown virtio transport 'pcie' (from its 'transport'); " +
        'this VM has: mmio, pci',
    );
    const v = await refusal({ virtio: { transport: 'ccw' }, plugins: [...base(), nic('net0')] });
    expect(v.message).to.match(/net0: unknown virtio transport 'ccw' \(from the VM's 'virtio\.transport'\)/);
  });

  it('two transports and no choice anywhere is refused; a malformed name fails config validation', async () => {
    const e = await refusal({ plugins: [...base(), disk('disk1')] });
    expect(e.message).to.match(/disk1: this VM has several virtio transports \(mmio, pci\)/);
    const bad = await refusal({ virtio: { transport: 'PCI!' }, plugins: [...base(), disk('disk1')] });
    expect(bad.message).to.match(/virtio\.transport.*a transport name like 'mmio' or 'pci'/);
  });

  it("a config without any transport names keeps working with the VM's only transport", async () => {
    await assemble({
      plugins: [{ name: 'raw-disk' }, { path: writeFakeTransport('pci') }, disk('disk1'), nic('net0')],
    });
    expect(attached('pci')).to.deep.equal(['disk1', 'net0']);
  });
});
