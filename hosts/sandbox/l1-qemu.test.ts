import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedL1Qemu, l1Emulator } from './l1-qemu.js';

/** A cache folder with one tree per version; `complete` marks the finished ones. */
function tree(cache: string, version: string, complete: boolean): string {
  const t = join(cache, version, 'tree');
  mkdirSync(join(t, 'usr', 'bin'), { recursive: true });
  writeFileSync(join(t, 'usr', 'bin', 'qemu-system-x86_64'), '');
  if (complete) writeFileSync(join(cache, version, 'complete'), 'x.deb\n');
  return t;
}

describe('sandbox: the QEMU that emulates L1', () => {
  let cache: string;
  beforeEach(() => {
    cache = mkdtempSync(join(tmpdir(), 'l1-qemu-test-'));
  });
  afterEach(() => rmSync(cache, { recursive: true, force: true }));

  it("is the host's while the cache holds no complete tree", () => {
    tree(cache, '10.0.2', false);
    expect(cachedL1Qemu(cache)).to.equal(undefined);
    expect(l1Emulator('/usr/bin/qemu-system-x86_64', false, {}, cache)).to.deep.equal({
      qemu: '/usr/bin/qemu-system-x86_64',
      args: [],
      from: 'host',
    });
  });

  it('is the newest complete cached tree, with its firmware folder', () => {
    tree(cache, '9.2.1', true);
    const t = tree(cache, '10.0.2', true);
    tree(cache, '10.1.0', false);
    const e = l1Emulator('/usr/bin/qemu-system-x86_64', false, {}, cache);
    expect(e).to.deep.equal({
      qemu: join(t, 'usr/bin/qemu-system-x86_64'),
      args: ['-L', join(t, 'usr/share/qemu')],
      from: 'cache',
    });
  });

  it("keeps the host's for a variant machine and when asked, and takes an explicit binary", () => {
    tree(cache, '10.0.2', true);
    expect(l1Emulator('/q', true, {}, cache).from).to.equal('host');
    expect(l1Emulator('/q', false, { TSVMM_SANDBOX_L1_QEMU: 'host' }, cache).qemu).to.equal('/q');
    expect(
      l1Emulator('/q', true, { TSVMM_SANDBOX_L1_QEMU: '/opt/q', TSVMM_SANDBOX_L1_QEMU_DATA: '/opt/fw' }, cache),
    ).to.deep.equal({ qemu: '/opt/q', args: ['-L', '/opt/fw'], from: 'env' });
  });
});
