import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assembleVm, type AssembledVm } from '../../core/vmm/assemble.js';
import { silentLogger } from '../../core/vmm/logger.js';
import { restoreClones, snapshotVm } from '../../plugins/migration/index.js';
import { COUNTER, DATA, memoryOf, tinyConfig, until, writeTinyGuest } from './tiny-guest.js';

const sha = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('migration: clones from one snapshot (kvm tier)', function () {
  this.timeout(120_000);
  let dir: string;
  const vms: AssembledVm[] = [];
  before(function () {
    if (!fs.existsSync('/dev/kvm')) this.skip(); // reason: no /dev/kvm on this host
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mig-clone-'));
    writeTinyGuest(dir);
    fs.writeFileSync(path.join(dir, 'disk.raw'), Buffer.alloc(1 << 20, 0x11));
  });
  after(async () => {
    for (const vm of vms.splice(0)) {
      await vm.machine?.stop({ kind: 'api' });
      await vm.dispose();
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('three clones run at once, each with its own memory and a qcow2 overlay over the unchanged image', async () => {
    const config = tinyConfig([
      { name: 'raw-disk' },
      { name: 'virtio-mmio' },
      { name: 'virtio-blk', id: 'vda', config: { path: 'disk.raw' } },
    ]);
    const src = await assembleVm({ config, baseDir: dir }, { logger: silentLogger() });
    await src.machine!.start();
    await until(() => memoryOf(src).readU32(COUNTER) > 1000, 'the guest to count');
    const snap = path.join(dir, 'snap');
    await snapshotVm(src, snap, { leavePaused: true });
    await src.machine!.stop({ kind: 'api' });
    await src.dispose(); // the image is the clones' base now: nobody writes it
    const base = sha(path.join(dir, 'disk.raw'));

    const clones = await restoreClones(snap, 3, { logger: silentLogger() });
    vms.push(...clones.map((c) => c.vm));
    expect(clones.map((c) => c.info.index)).to.deep.equal([1, 2, 3]);
    const saved = memoryOf(clones[0]!.vm).readU32(COUNTER);
    for (const c of clones) {
      const overlay = c.info.overlays.vda!;
      expect(overlay).to.equal(path.join(snap, 'clones', `clone-${c.info.index}`, 'vda.qcow2'));
      const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', overlay], { encoding: 'utf8' }));
      expect(info['backing-filename']).to.equal(path.join(dir, 'disk.raw'));
      expect(info['backing-filename-format']).to.equal('raw');
      expect(memoryOf(c.vm).readU32(COUNTER), 'every clone starts at the saved count').to.equal(saved);
    }
    memoryOf(clones[0]!.vm).writeU32(DATA, 0xabcd);
    expect(memoryOf(clones[1]!.vm).readU32(DATA), 'memory is copy-on-write per clone').to.not.equal(0xabcd);
    for (const c of clones) await c.vm.machine!.start();
    for (const c of clones) await until(() => memoryOf(c.vm).readU32(COUNTER) > saved + 100, 'each clone to count');
    expect(fs.readFileSync(path.join(snap, 'memory.bin')).readUInt32LE(Number(DATA.value))).to.not.equal(0xabcd);
    expect(sha(path.join(dir, 'disk.raw')), 'the base image is unchanged').to.equal(base);
  });
});
