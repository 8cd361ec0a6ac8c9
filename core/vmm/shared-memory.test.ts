import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../config/errors.js';
import { problemsOf } from '../config/problems.js';
import { buildLocations } from '../plugin/locations.js';
import { parseManifest } from '../plugin/manifest.js';
import { planVm } from './plan.js';

const mockHv = path.join(buildLocations().repoRoot, 'test', 'fixtures', 'mock-hypervisor');
const host = { ram: 8n << 30n, swap: 0n };

/** The vhost-user disk (its manifest declares sharedMemory). */
const BLK = '  - name: vhost-user-blk\n    config: { socket: blk.sock }';

/** A micro-like VM with `device` and `machine` as given. */
const yaml = (machine: string, device = BLK): string =>
  [`machine: { memory: 64M${machine} }`, 'plugins:', `  - path: ${mockHv}`, '  - name: x86', '  - name: virtio-mmio']
    .concat([device, ''])
    .join('\n');

describe("planVm: a plugin's sharedMemory manifest flag picks guest RAM another process can map", function () {
  this.timeout(30_000);
  let tmp: string;
  const plan = (text: string) => {
    const file = path.join(tmp, 'vm.yaml');
    fs.writeFileSync(file, text);
    return planVm(file, { hostMemory: host });
  };
  beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-shm-'))));
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('vhost-user-blk and virtio-fs declare it; the manifest schema takes it', () => {
    for (const p of ['vhost-user-blk', 'virtio-fs']) {
      const m = path.join(buildLocations().repoRoot, 'plugins', p, 'vmm-plugin.json');
      expect(parseManifest(JSON.parse(fs.readFileSync(m, 'utf8')), m).sharedMemory, p).to.equal(true);
    }
  });

  it('memoryBackend left out: memfd is chosen', async () => {
    expect((await plan(yaml(''))).config.machine.memoryBackend).to.equal('memfd');
    const fs = '  - name: virtio-fs\n    config: { socket: fs.sock, tag: t }';
    expect((await plan(yaml('', fs))).config.machine.memoryBackend).to.equal('memfd');
  });

  it('memfd or file written out is kept; no such plugin keeps the default anonymous', async () => {
    expect((await plan(yaml(', memoryBackend: memfd'))).config.machine.memoryBackend).to.equal('memfd');
    expect((await plan(yaml(', memoryBackend: file, memoryPath: ram'))).config.machine.memoryBackend).to.equal('file');
    expect((await plan(yaml('', '  - name: virtio-balloon'))).config.machine.memoryBackend).to.equal('anonymous');
  });

  it('anonymous written out: one problem at the key, naming the device and the fix', async () => {
    const err = await plan(yaml(', memoryBackend: anonymous')).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(ConfigError);
    expect(problemsOf(err!).map((p) => p.message)).to.deep.equal([
      `${tmp}/vm.yaml:1:40: machine.memoryBackend: 'vhost-user-blk' (vhost-user-blk) hands guest RAM to another ` +
        'process, which cannot map anonymous memory: use memfd (or file), or leave memoryBackend out',
    ]);
  });
});
