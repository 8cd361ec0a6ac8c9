import { expect } from 'chai';
import { parseGuestOutput } from './markers.js';

describe('guestkit console markers', () => {
  it('finds init, the result block and the exit status (CRLF console)', () => {
    const text =
      '[ 1.0] booting\r\nTSVMM-INIT-OK\r\nTSVMM-RESULT-BEGIN\r\nline 1\r\nline 2\r\nTSVMM-RESULT-END\r\nTSVMM-EXIT 3\r\n[ 2.0] reboot: Power down\r\n';
    expect(parseGuestOutput(text)).to.deep.equal({
      initReached: true,
      result: 'line 1\nline 2',
      resultComplete: true,
      exitCode: 3,
    });
  });

  it('reports a script that never finished', () => {
    const r = parseGuestOutput('TSVMM-INIT-OK\nTSVMM-RESULT-BEGIN\npartial\n');
    expect(r).to.deep.equal({ initReached: true, result: 'partial\n', resultComplete: false });
    expect(r.exitCode).to.equal(undefined);
  });

  it('reports a guest that never reached init', () => {
    expect(parseGuestOutput('Kernel panic - not syncing: VFS\n')).to.deep.equal({
      initReached: false,
      resultComplete: false,
    });
  });

  it('does not take marker-like text inside a line for a marker', () => {
    const r = parseGuestOutput('echo TSVMM-INIT-OK\nTSVMM-EXIT 3x\n');
    expect(r.initReached).to.equal(false);
    expect(r.exitCode).to.equal(undefined);
  });
});
