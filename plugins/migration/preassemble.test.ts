import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { VmPlan } from '../../core/vmm/plan.js';
import { silentLogger } from '../../core/vmm/logger.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { ControlServer } from './control.js';
import { canPreassemble } from './preassemble.js';

/** A plan of plugins `[name, config, source]` (only what canPreassemble reads). */
const planOf = (...ps: [string, unknown?, string?][]): Pick<VmPlan, 'plugins'> =>
  ({
    plugins: ps.map(([name, config, source]) => ({ plugin: { manifest: { name }, source: source ?? 'repo' }, config })),
  }) as unknown as Pick<VmPlan, 'plugins'>;

describe('migration: which VMs a destination builds before the source stops', () => {
  const tiny: [string, unknown?][] = [['kvm'], ['acpi'], ['x86'], ['serial', { console: { kind: 'stdio' } }]];

  it('the kvm, x86 and device plugins that take no host resource the source holds', () => {
    expect(canPreassemble(planOf(...tiny, ['i8042'], ['rtc'], ['boot-timer'], ['migration', {}]))).to.equal(true);
    expect(canPreassemble(planOf(...tiny, ['serial', { console: { kind: 'none' } }]))).to.equal(true);
    expect(canPreassemble(planOf(...tiny, ['virtio-mmio'], ['raw-disk'], ['qcow'])), 'transports, formats').to.equal(
      true,
    );
  });

  it('with a disk on a raw or qcow2 image (opened once the source let go), not on a format picked by name elsewhere', () => {
    for (const format of [undefined, 'auto', 'raw', 'qcow2'])
      expect(canPreassemble(planOf(...tiny, ['raw-disk'], ['virtio-blk', { path: 'd.img', format }])), format).to.equal(
        true,
      );
    expect(canPreassemble(planOf(...tiny, ['virtio-blk', { path: 'd.vmdk', format: 'vmdk' }]))).to.equal(false);
  });

  it('with a NIC on a named tap (opened once the source let go)', () => {
    const net = ['virtio-net', { backend: { kind: 'tap', name: 'tap0' } }] as [string, unknown];
    expect(canPreassemble(planOf(...tiny, ['raw-disk'], ['virtio-blk', { path: 'd.img' }], net))).to.equal(true);
  });

  it('not with a NIC on inherited fds or a socket, a console file or socket, or a plugin from outside the repository', () => {
    expect(canPreassemble(planOf(...tiny, ['virtio-net', {}]))).to.equal(false);
    expect(canPreassemble(planOf(...tiny, ['virtio-net', { backend: { kind: 'tap', fds: [3] } }]))).to.equal(false);
    expect(canPreassemble(planOf(...tiny, ['virtio-net', { backend: { kind: 'tap', name: 'tap%d' } }]))).to.equal(
      false,
    );
    expect(canPreassemble(planOf(...tiny, ['virtio-net', { backend: { kind: 'stream', path: 'p' } }]))).to.equal(false);
    expect(canPreassemble(planOf(['kvm'], ['serial', { console: { kind: 'file', path: 'c.log' } }]))).to.equal(false);
    expect(canPreassemble(planOf(['kvm'], ['serial', { console: { kind: 'unix-socket', path: 's' } }]))).to.equal(
      false,
    );
    expect(canPreassemble(planOf(['kvm'], ['rtc', {}, 'path']))).to.equal(false);
  });
});

describe('migration: the control socket of a VM built before its source let go', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mig-ctl-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const server = (p: string): ControlServer => new ControlServer(p, () => ({}) as AssembledVm, silentLogger());

  it('closed before it listened, it leaves the path alone (the source still listens there)', async () => {
    const p = path.join(dir, 'ctl.sock');
    const source = server(p);
    await source.listen();
    server(p).close();
    expect(fs.existsSync(p), "the source's socket is still there").to.equal(true);
    source.close();
    expect(fs.existsSync(p)).to.equal(false);
  });

  it('listen() after close() does not take the path', async () => {
    const p = path.join(dir, 'ctl.sock');
    const s = server(p);
    s.close();
    await s.listen();
    expect(fs.existsSync(p)).to.equal(false);
  });
});
