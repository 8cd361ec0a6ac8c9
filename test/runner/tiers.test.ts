import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { tierFiles, tierOf } from './tiers.js';

describe('run-tiers file selection', () => {
  it('puts each test file in exactly one tier by its name', () => {
    expect(tierOf('a/b.test.js')).to.equal('unit');
    expect(tierOf('a/b.kvm.test.js')).to.equal('kvm');
    expect(tierOf('a/b.linux.test.js')).to.equal('linux');
    expect(tierOf('a/b.sandbox.test.js')).to.equal('sandbox');
  });

  it('finds tier files under the compiled tree, never in node_modules or nested build folders', () => {
    const root = mkdtempSync(join(tmpdir(), 'tiers-'));
    try {
      for (const f of [
        'x/a.test.js',
        'x/b.kvm.test.js',
        'y/c.linux.test.js',
        'node_modules/m/d.test.js',
        '.build/o/e.test.js',
        'x/f.test.js.map',
        'x/g.js',
      ]) {
        mkdirSync(join(root, f, '..'), { recursive: true });
        writeFileSync(join(root, f), '');
      }
      const rel = (t: 'unit' | 'kvm' | 'linux') => tierFiles(root, t).map((f) => relative(root, f));
      expect(rel('unit')).to.deep.equal(['x/a.test.js']);
      expect(rel('kvm')).to.deep.equal(['x/b.kvm.test.js']);
      expect(rel('linux')).to.deep.equal(['y/c.linux.test.js']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
