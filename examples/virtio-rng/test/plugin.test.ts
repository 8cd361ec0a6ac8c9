import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokens, assembleVm, type AssembledVm } from 'tsvmm';
import { silentLogger, testPlugins } from 'tsvmm/testing';

/** This package's folder (dist/test/ is two levels below it): its package.json holds the manifest. */
const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const u32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(0, true);

describe('virtio-rng plugin in an assembled VM (tsvmm mock hypervisor, x86 machine, virtio-mmio)', () => {
  let dir: string;
  let vm: AssembledVm | undefined;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rng-plugin-'));
    fs.writeFileSync(path.join(dir, 'kernel'), 'never loaded: the machine is not started');
  });
  afterEach(async () => {
    await vm?.dispose();
    vm = undefined;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const assemble = (rngConfig: Record<string, unknown> = {}) =>
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
            { path: PACKAGE_DIR, id: 'rng0', config: rngConfig },
          ],
        },
      },
      { replacePlugins: { kvm: testPlugins().mockHypervisor }, resolveMachine: false, logger: silentLogger() },
    );

  it('attaches to the transport: the guest finds an entropy device (virtio-mmio DeviceID 4) in its window', async () => {
    vm = await assemble();
    const bus = vm.container.resolve(Tokens.Bus.token);
    const win = bus.registrations('mmio').find((r) => r.name.includes('rng0'));
    expect(win, 'an mmio window for rng0').to.not.equal(undefined);
    const reg = (off: number) => {
      const d = new Uint8Array(4);
      bus.read('mmio', win!.range.start.value + BigInt(off), d);
      return u32(d);
    };
    expect(reg(0x000)).to.equal(0x74726976); // "virt"
    expect(reg(0x004)).to.equal(2); // virtio-mmio version 2
    expect(reg(0x008)).to.equal(4); // entropy source
  });

  it('a bad config is refused naming the key', async () => {
    let err: Error | undefined;
    await assemble({ queueSize: 100 }).catch((e: Error) => (err = e));
    expect(err?.message)
      .to.match(/queueSize/)
      .and.match(/power of two/);
  });
});
