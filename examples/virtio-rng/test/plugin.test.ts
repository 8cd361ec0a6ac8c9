import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AssembledVm } from 'tsvmm';
import { assembleDeviceVm, mmioRegisters } from 'tsvmm/testing';

/** This package's folder (dist/test/ is two levels below it): its package.json holds the manifest. */
const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('virtio-rng plugin in an assembled VM (tsvmm mock hypervisor, x86 machine, virtio-mmio)', () => {
  let dir: string;
  let vm: AssembledVm | undefined;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rng-plugin-'))));
  afterEach(async () => {
    await vm?.dispose();
    vm = undefined;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const assemble = (config: Record<string, unknown> = {}) =>
    assembleDeviceVm(dir, [{ path: PACKAGE_DIR, id: 'rng0', config }]);

  it('attaches to the transport: the guest finds an entropy device (virtio-mmio DeviceID 4) in its window', async () => {
    vm = await assemble();
    const reg = mmioRegisters(vm, 'rng0');
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
