import { expect } from 'chai';
import { pairedRow } from './rows.js';
import type { Row } from './types.js';

const base: Row = { id: 'x.y', bench: 'x', label: 'x', unit: 'ms', better: 'lower', where: 'host', peer: 'p' };

describe('bench pairedRow', () => {
  it('pairs only the repeats where both sides have a figure', () => {
    const r = pairedRow(base, [10, undefined, 30], [5, 7, 10], { ours: [], peer: [] });
    expect(r.na).to.equal(undefined);
    expect(r.ours?.values).to.deep.equal([10, 30]);
    expect(r.peerSummary?.values).to.deep.equal([5, 10]);
    expect(r.ratio?.values).to.deep.equal([2, 3]);
  });

  it('says which side had no figure and why, and invents none', () => {
    const r = pairedRow(base, [undefined], [5], { ours: ['ours: boom'], peer: [] });
    expect(r.na).to.equal('n/a: ours: ours: boom');
    expect(r.ratio).to.equal(undefined);
    expect(r.peerSummary?.values).to.deep.equal([5]);
    expect(pairedRow(base, [4], [], { ours: [], peer: ['qemu died'] }).na).to.equal('n/a: peer: qemu died');
  });
});
