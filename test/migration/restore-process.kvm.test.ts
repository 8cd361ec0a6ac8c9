import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { controlRequest } from '../../plugins/migration/control.js';
import { COUNTER, tinyConfig, until, writeTinyGuest } from './tiny-guest.js';
import { vmm, type VmmChild } from './vmm-process.js';

describe('migration: `vmm snapshot` of a running `vmm run`, `vmm restore` in a new process (kvm tier)', function () {
  this.timeout(120_000);
  let dir: string;
  const children: VmmChild[] = [];
  before(function () {
    if (!fs.existsSync('/dev/kvm')) this.skip(); // reason: no /dev/kvm on this host
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mig-proc-'));
    writeTinyGuest(dir);
  });
  after(() => {
    for (const c of children) c.child.kill('SIGKILL');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the restored guest prints the byte after the one its snapshot holds, under the seccomp filter', async () => {
    const cfg = path.join(dir, 'vm.yaml');
    const config = tinyConfig([{ name: 'migration', config: { control: 'ctl.sock' } }], { kind: 'stdio' });
    fs.writeFileSync(cfg, stringify(config));
    const source = vmm(['run', '--force', cfg], dir);
    children.push(source);
    const tail = (v: VmmChild): string => v.tail();
    await until(() => source.stdout().length >= 2 && fs.existsSync(path.join(dir, 'ctl.sock')), 'the guest to print');

    const snap = vmm(['snapshot', 'ctl.sock', 'snap'], dir);
    expect(await snap.ended, tail(snap)).to.equal(0);
    expect(snap.stdout().toString()).to.match(/^snapshot snap: \d+ states, \d+ of 67108864 bytes/);
    const printedBefore = source.stdout().length;
    await until(() => source.stdout().length > printedBefore, 'the source to print on after the snapshot');
    source.child.kill('SIGTERM');
    expect(await source.ended, tail(source)).to.equal(143);

    const count = fs.readFileSync(path.join(dir, 'snap', 'memory.bin')).readUInt32LE(Number(COUNTER.value));
    const restored = vmm(['restore', '--force', 'snap'], dir);
    children.push(restored);
    await until(() => restored.stdout().length >= 2, 'the restored guest to print', 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; ${tail(restored)}`);
    });
    const next = ((count >>> 16) + 1) & 0xff;
    expect([...restored.stdout().subarray(0, 2)], 'it counts on from the saved count').to.deep.equal([
      next,
      (next + 1) & 0xff,
    ]);
    restored.child.kill('SIGTERM');
    expect(await restored.ended, tail(restored)).to.equal(143);
  });

  it('`vmm migrate` moves a running `vmm run` to a `vmm receive` process: it prints on from where it was', async () => {
    const cfg = path.join(dir, 'mig.yaml');
    const config = tinyConfig([{ name: 'migration', config: { control: 'ctl2.sock' } }], { kind: 'stdio' });
    fs.writeFileSync(cfg, stringify(config));
    const dest = vmm(['receive', `unix:${path.join(dir, 'in.sock')}`], dir);
    children.push(dest);
    const source = vmm(['run', '--force', cfg], dir);
    children.push(source);
    await until(() => source.stdout().length >= 2 && fs.existsSync(path.join(dir, 'ctl2.sock')), 'the guest to print');
    await until(() => fs.existsSync(path.join(dir, 'in.sock')), 'the destination to listen');
    const mig = vmm(['migrate', 'ctl2.sock', `unix:${path.join(dir, 'in.sock')}`], dir);
    expect(await mig.ended, mig.tail()).to.equal(0);
    expect(mig.stdout().toString()).to.match(
      /round 1: .*\nmigrated to unix:.*: \d+ rounds, \d+ bytes, the guest stopped \d+ ms/s,
    );
    expect(await source.ended, `the source ends once it handed over; ${source.tail()}`).to.equal(0);
    const last = source.stdout()[source.stdout().length - 1]!;
    await until(() => dest.stdout().length >= 2, 'the destination guest to print', 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; ${dest.tail()}`);
    });
    const first = dest.stdout()[0]!;
    expect(first, "the first byte after the switch-over follows the source's last").to.equal((last + 1) & 0xff);
    // built before the source stopped, the destination takes the control socket's path once the source let go
    await until(() => fs.existsSync(path.join(dir, 'ctl2.sock')), "the destination's control socket");
    const st = await controlRequest(path.join(dir, 'ctl2.sock'), { op: 'status' });
    expect(st.state, 'its control socket answers').to.equal('started');
    dest.child.kill('SIGTERM');
    expect(await dest.ended, dest.tail()).to.equal(143);
  });
});
