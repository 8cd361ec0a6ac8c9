import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assembleDeviceVm, mmioRegisters } from '../../core/testing/test-plugins.js';
import { Tokens } from '../../core/tokens.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';

describe('virtio-balloon plugin in an assembled VM (mock hypervisor)', () => {
  let dir: string;
  let vm: AssembledVm | undefined;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'balloon-plugin-'))));
  afterEach(async () => {
    await vm?.dispose();
    vm = undefined;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const assemble = (config: Record<string, unknown>) =>
    assembleDeviceVm(dir, [{ name: 'virtio-balloon', id: 'balloon0', config }]);

  it('publishes Balloon: the target set through it is what the guest reads in its mmio window', async () => {
    vm = await assemble({ target: '16M' });
    const reg = mmioRegisters(vm, 'balloon0');
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
