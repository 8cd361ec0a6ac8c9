import { expect } from 'chai';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stickyTmp } from './sandbox.js';
import { lddLibraries, mergedUsr, Staging } from './staging.js';

describe('sandbox image staging', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'staging-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps /tmp sticky and world-writable when a staged tree lives under it (a project cloned to /tmp)', () => {
    // the per-run overlay's upper /tmp replaces the base's: made implicitly it was 0755, and only root could
    // create files in L1's /tmp (passt, dropped to nobody, failed to make its socket)
    const src = join(dir, 'proj');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'x');
    const out = join(dir, 'out');
    stickyTmp(new Staging()).hostTree(src, '/tmp/ci-clone/proj').materialize(out);
    expect(statSync(join(out, 'tmp')).mode & 0o7777).to.equal(0o1777);
    expect(statSync(join(out, 'var', 'tmp')).mode & 0o7777).to.equal(0o1777);
    expect(readFileSync(join(out, 'tmp', 'ci-clone', 'proj', 'f'), 'utf8')).to.equal('x');
    const plain = join(dir, 'plain');
    new Staging().hostTree(src, '/tmp/ci-clone/proj').materialize(plain);
    expect(statSync(join(plain, 'tmp')).mode & 0o7777, 'without it (the bug)').to.not.equal(0o1777);
  });

  it('maps top-level bin/sbin/lib/lib64 into /usr (merged /usr)', () => {
    expect(mergedUsr('/lib/x86_64-linux-gnu/libc.so.6')).to.equal('/usr/lib/x86_64-linux-gnu/libc.so.6');
    expect(mergedUsr('/lib64/ld-linux-x86-64.so.2')).to.equal('/usr/lib64/ld-linux-x86-64.so.2');
    expect(mergedUsr('/usr/bin/node')).to.equal('/usr/bin/node');
    expect(mergedUsr('/library/x')).to.equal('/library/x');
  });

  it('lists the libraries of a dynamic binary and the loader', () => {
    const libs = lddLibraries(process.execPath);
    expect(libs.some((l) => /libc\.so/.test(l))).to.equal(true);
    expect(libs.some((l) => /ld-linux/.test(l))).to.equal(true);
  });

  it('writes files, data, links and folders; the key follows file changes', () => {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'A');
    writeFileSync(join(src, 'sub', 'b.txt'), 'B');
    writeFileSync(join(src, 'skip.img'), 'X');
    const plan = () =>
      new Staging()
        .mergedUsrLinks()
        .hostTree(src, '/proj', (rel) => rel.endsWith('.img'))
        .add({ kind: 'data', dest: '/tsvmm/run.sh', data: 'echo hi\n', mode: 0o755 });
    const s = plan();
    const k1 = s.key('v1');
    const out = join(dir, 'root');
    s.materialize(out);
    expect(readFileSync(join(out, 'proj/sub/b.txt'), 'utf8')).to.equal('B');
    expect(() => lstatSync(join(out, 'proj/skip.img'))).to.throw();
    expect(readlinkSync(join(out, 'lib64'))).to.equal('usr/lib64');
    expect(statSync(join(out, 'tsvmm/run.sh')).mode & 0o777).to.equal(0o755);
    expect(plan().key('v1')).to.equal(k1);
    expect(plan().key('v2')).to.not.equal(k1);
    writeFileSync(join(src, 'a.txt'), 'AA');
    expect(plan().key('v1')).to.not.equal(k1);
  });

  it('refuses image paths that climb out', () => {
    expect(() => new Staging().add({ kind: 'dir', dest: 'relative' })).to.throw(/bad image path/);
  });
});
