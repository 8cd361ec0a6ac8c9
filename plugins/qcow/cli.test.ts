import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import sinon from 'sinon';
import { parseSize } from './cli.js';
import { openQcow2 } from './open.js';
import { QEMU_MISSING, fillRandom, hasQemuImg, imageCli, qemuCheck, qemuImg, tempDir } from './testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

/** `vmm image create|info|check|convert`, driven through a fresh commander program. */
describe('qcow: image CLI', function () {
  this.timeout(30_000);
  const t = tempDir();
  // qemu-img is the judge of what the CLI writes
  before(function () {
    if (!hasQemuImg) skipUnlessCi(this, QEMU_MISSING);
  });
  let out: string;
  let stdout: sinon.SinonStub;
  let stderr: sinon.SinonStub;

  beforeEach(() => {
    out = '';
    stdout = sinon.stub(process.stdout, 'write').callsFake((s: string | Uint8Array) => ((out += String(s)), true));
    stderr = sinon.stub(process.stderr, 'write').callsFake((s: string | Uint8Array) => ((out += String(s)), true));
    process.exitCode = undefined;
  });
  afterEach(() => {
    stdout.restore();
    stderr.restore();
    process.exitCode = undefined;
  });
  after(() => t.cleanup());

  const vmm = imageCli;

  it('parses sizes', () => {
    expect(parseSize('512')).to.equal(512);
    expect(parseSize('64k')).to.equal(65536);
    expect(parseSize('10G')).to.equal(10 * 2 ** 30);
    expect(() => parseSize('ten')).to.throw(/not a size/);
  });

  it('create then info', async () => {
    const f = t.path('a.qcow2');
    expect(await vmm('create', f, '10M', '--cluster-size', '4k', '--refcount-bits', '8')).to.equal(0);
    expect(await vmm('info', '--json', f)).to.equal(0);
    const info = JSON.parse(out.slice(out.indexOf('{'))) as Record<string, unknown>;
    expect(info).to.include({ virtualSize: 10 << 20, clusterSize: 4096, refcountBits: 8, version: 3 });
    expect(qemuCheck(f).status).to.equal(0);
  });

  it('create over a backing file takes its size', async () => {
    const b = t.path('b.qcow2');
    await vmm('create', b, '3M');
    const o = t.path('o.qcow2');
    expect(await vmm('create', o, '-b', 'b.qcow2', '-F', 'qcow2')).to.equal(0);
    await vmm('info', '--json', o);
    const info = JSON.parse(out.slice(out.indexOf('{'))) as Record<string, unknown>;
    expect(info).to.include({ virtualSize: 3 << 20, backingFile: 'b.qcow2', backingFormat: 'qcow2' });
  });

  it('check finds a leak (exit 3), --repair leaks fixes it (exit 0)', async () => {
    const f = t.path('leak.qcow2');
    await vmm('create', f, '1M', '--cluster-size', '4k');
    // Bump the refcount of an unused cluster past the end of the metadata: a leak.
    const b = readFileSync(f);
    const block = Number(b.readBigUInt64BE(Number(b.readBigUInt64BE(48))));
    b.writeUInt16BE(1, block + 2 * 10);
    writeFileSync(f, Buffer.concat([b, Buffer.alloc(4096 * 8)]));
    expect(await vmm('check', f)).to.equal(3);
    expect(out).to.match(/Leaked cluster 10 refcount=1 reference=0/);
    expect(qemuCheck(f).leaks).to.equal(1);
    expect(await vmm('check', '-r', 'leaks', f)).to.equal(0);
    expect(await vmm('check', f)).to.equal(0);
    expect(qemuCheck(f).status).to.equal(0);
  });

  it('check reports a refcount below the references as corruption (exit 2)', async () => {
    const f = t.path('corrupt.qcow2');
    await vmm('create', f, '1M', '--cluster-size', '4k');
    const img = await openQcow2({ path: f, readOnly: false });
    await img.write(0n, [new Uint8Array(4096).fill(1)]);
    await img.close();
    const b = readFileSync(f);
    const l2 = Number(b.readBigUInt64BE(Number(b.readBigUInt64BE(40))) & 0xfffffffffe00n);
    const data = Number(b.readBigUInt64BE(l2) & 0xfffffffffe00n);
    const block = Number(b.readBigUInt64BE(Number(b.readBigUInt64BE(48))));
    b.writeUInt16BE(0, block + 2 * (data / 4096));
    writeFileSync(f, b);
    expect(await vmm('check', f)).to.equal(2);
    expect(out).to.match(/ERROR cluster \d+ refcount=0 reference=1/);
    expect(qemuCheck(f).status).to.equal(2);
  });

  it('convert raw -> qcow2 (compressed) -> raw round-trips', async () => {
    const src = t.path('src.raw');
    const data = Buffer.alloc(2 << 20);
    fillRandom(data.subarray(0, 100_000), 5);
    data.fill('abc', 1 << 20, (1 << 20) + 300_000);
    writeFileSync(src, data);
    const q = t.path('conv.qcow2');
    expect(await vmm('convert', '-c', src, q)).to.equal(0);
    const back = t.path('back.raw');
    expect(await vmm('convert', '-O', 'raw', q, back)).to.equal(0);
    expect(readFileSync(back).equals(data)).to.equal(true);
    expect(qemuCheck(q).status).to.equal(0);
    expect(qemuImg(['compare', '-F', 'raw', q, src]).status).to.equal(0);
  });

  it('reports a QcowError as a message and exit 1, not a stack', async () => {
    const f = t.path('notqcow');
    writeFileSync(f, Buffer.alloc(4096, 1));
    expect(await vmm('info', f)).to.equal(1);
    expect(out).to.match(/vmm image: not a qcow2 image/);
  });
});
