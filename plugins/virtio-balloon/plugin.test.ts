import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { testPlugins } from '../../core/testing/test-plugins.js';
import { Tokens } from '../../core/tokens.js';
import { assembleVm, type AssembledVm } from '../../core/vmm/assemble.js';
import { silentLogger } from '../../core/vmm/logger.js';

describe('virtio-balloon plugin in an assembled VM (mock hypervisor)', () => {
  let dir: string;
  let vm: AssembledVm | undefined;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'balloon-plugin-'));
    fs.writeFileSync(path.join(dir, 'kernel'), 'not started');
  });
  afterEach(async () => {
    await vm?.dispose();
    vm = undefined;
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
            { name: 'virtio-balloon', id: 'balloon0', config },
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

  it('publishes Balloon: the target set through it is what the guest reads in its mmio window', async () => {
    vm = await assemble({ target: '16M' });
    const bus = vm.container.resolve(Tokens.Bus.token);
    const win = bus.registrations('mmio').find((r) => r.name.includes('balloon0'))!;
    const reg = (off: number) => {
      const d = new Uint8Array(4);
      bus.read('mmio', win.range.start.value + BigInt(off), d);
      return new DataView(d.buffer).getUint32(0, true);
    };
    expect(reg(0x008)).to.equal(5); // DeviceID: balloon
    expect(reg(0x100)).to.equal(4096); // num_pages: 16 MiB
    const balloon = vm.container.resolve(Tokens.Balloon.token);
    balloon.setTarget(32n << 20n);
    expect(reg(0x100)).to.equal(8192);
    expect(balloon.status().targetBytes).to.equal(32n << 20n);
    expect(() => balloon.setTarget(128n << 20n)).to.throw(/outside 0\.\.67108864/);
  });

  it('a target above guest RAM is refused at assembly', async () => {
    let err: Error | undefined;
    await assemble({ target: '1G' }).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/balloon target of 1073741824 bytes is outside/);
  });
});
