import { expect } from 'chai';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FuzzUsageError, fuzzCommand, fuzzTargets, parseFuzzArgs } from './cli.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('fuzz command line (npm run fuzz -- --target X --cases N)', () => {
  it('finds every compiled target of this folder', () => {
    const t = fuzzTargets(here);
    expect(t).to.include.members(['qcow2', 'virtqueue', 'virtio-blk', 'config']);
    expect(t.every((n) => !n.endsWith('.js'))).to.equal(true);
  });

  it('turns targets, cases and seed into the mocha files and the environment the targets read', () => {
    const known = ['qcow2', 'virtqueue'];
    const a = parseFuzzArgs(['--target', 'qcow2', '--cases', '250000', '--seed', '-7'], known);
    expect(a).to.deep.equal({ targets: ['qcow2'], cases: 250000, seed: -7, list: false });
    const c = fuzzCommand(a, known, '/d', '/r', { KEEP: '1' });
    expect(c.argv.slice(-1)).to.deep.equal(['/d/qcow2.fuzz.test.js']);
    expect(c.argv).to.include('--timeout');
    expect(c.env).to.include({ KEEP: '1', TSVMM_FUZZ_RUNS: '250000', TSVMM_SEED: '-7' });
    const all = fuzzCommand(parseFuzzArgs([], known), known, '/d', '/r', {});
    expect(all.argv.filter((x) => x.endsWith('.fuzz.test.js'))).to.have.length(2);
    expect(all.env.TSVMM_FUZZ_RUNS).to.equal(undefined);
  });

  it('refuses unknown targets and bad numbers, naming what is allowed', () => {
    const known = ['qcow2'];
    expect(() => parseFuzzArgs(['--target', 'nope'], known)).to.throw(FuzzUsageError, /targets: qcow2/);
    expect(() => parseFuzzArgs(['--cases', '0'], known)).to.throw(FuzzUsageError, /--cases/);
    expect(() => parseFuzzArgs(['--cases', '1e3x'], known)).to.throw(FuzzUsageError);
    expect(() => parseFuzzArgs(['--bogus'], known)).to.throw(FuzzUsageError, /usage/);
  });
});
