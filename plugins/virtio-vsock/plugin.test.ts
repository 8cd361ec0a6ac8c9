import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { testPlugins } from '../../core/testing/test-plugins.js';
import { Tokens } from '../../core/tokens.js';
import { assembleVm } from '../../core/vmm/assemble.js';
import { silentLogger } from '../../core/vmm/logger.js';

describe('virtio-vsock plugin in an assembled VM (mock hypervisor)', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsock-plugin-'));
    fs.writeFileSync(path.join(dir, 'kernel'), 'not started');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const assemble = (config: Record<string, unknown>) =>
    assembleVm(
      {
        baseDir: dir,
        config: {
          machine: { vcpus: 1, memory: '64M' },
          boot: { kernel: 'kernel' },
          plugins: [
            { name: 'kvm' },
            { name: 'x86', config: { acpi: false } },
            { name: 'virtio-mmio' },
            { name: 'virtio-vsock', id: 'vsock0', config },
          ],
        },
      },
      {
        replacePlugins: { kvm: testPlugins().mockHypervisor },
        resolveMachine: false,
        logger: silentLogger(),
        enforceManifests: true,
      },
    );

  it('listens on uds_path (relative to the config), shows DeviceID 19 and the CID, removes the socket on teardown', async () => {
    const vm = await assemble({ guestCid: 7, udsPath: 'v.sock' });
    const sock = path.join(dir, 'v.sock');
    try {
      expect(fs.lstatSync(sock).isSocket()).to.equal(true);
      const bus = vm.container.resolve(Tokens.Bus.token);
      const win = bus.registrations('mmio').find((r) => r.name.includes('vsock0'))!;
      const reg = (off: number) => {
        const d = new Uint8Array(4);
        bus.read('mmio', win.range.start.value + BigInt(off), d);
        return new DataView(d.buffer).getUint32(0, true);
      };
      expect(reg(0x008)).to.equal(19);
      expect(reg(0x100)).to.equal(7);
    } finally {
      await vm.dispose();
    }
    expect(fs.existsSync(sock)).to.equal(false);
  });

  it('a uds_path that is a regular file is refused, and the file is left alone', async () => {
    fs.writeFileSync(path.join(dir, 'file'), 'data');
    let err: Error | undefined;
    await assemble({ udsPath: 'file' }).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/exists and is not a socket/);
    expect(fs.readFileSync(path.join(dir, 'file'), 'utf8')).to.equal('data');
  });
});
