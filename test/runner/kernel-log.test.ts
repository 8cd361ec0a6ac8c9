import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelLogCursor, kernelLogSince, parseKmsgRecord, readKernelLog } from './kernel-log.js';

describe('kernel-log (L1 evidence for failed linux files)', () => {
  it('parses a /dev/kmsg record: priority without facility, sequence, first line of the text only', () => {
    const r = parseKmsgRecord('12,345,6789,-;kvm: vcpu0 unhandled rdmsr: 0xc0011029\n SUBSYSTEM=kvm\n');
    expect(r).to.deep.equal({ seq: 345, prio: 4, text: 'kvm: vcpu0 unhandled rdmsr: 0xc0011029' });
  });

  it('refuses malformed records', () => {
    expect(parseKmsgRecord('no separator')).to.equal(undefined);
    expect(parseKmsgRecord('x,y;text')).to.equal(undefined);
  });

  it('keeps only records after the cursor, the last `max` of them', () => {
    const recs = [1, 2, 3, 4, 5].map((seq) => ({ seq, prio: 6, text: `line ${seq}` }));
    expect(kernelLogCursor(recs)).to.equal(5);
    expect(kernelLogCursor([])).to.equal(-1);
    expect(kernelLogSince(2, recs, 2)).to.deep.equal(['[L1 kernel 6] line 4', '[L1 kernel 6] line 5']);
    expect(kernelLogSince(5, recs)).to.deep.equal([]);
  });

  it('reads a file of records one read() at a time and gives [] for a path that cannot be opened', () => {
    // a plain file returns everything in one read, so it yields the first record only: the parser's contract
    const dir = mkdtempSync(join(tmpdir(), 'kmsg-'));
    writeFileSync(join(dir, 'k'), '6,7,1,-;hello\n');
    expect(readKernelLog(join(dir, 'k'))).to.deep.equal([{ seq: 7, prio: 6, text: 'hello' }]);
    expect(readKernelLog(join(dir, 'missing'))).to.deep.equal([]);
  });
});
