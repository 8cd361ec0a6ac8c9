import { expect } from 'chai';
import { l1ExtraWords } from './l1-cmdline.js';

describe('sandbox: L1 command-line words', () => {
  it("leaves L1's THP at the kernel's default unless asked, and adds the experiment words", () => {
    expect(l1ExtraWords({})).to.equal('');
    expect(l1ExtraWords({ TSVMM_SANDBOX_APPEND: 'kvm_amd.npt=0' })).to.equal(' kvm_amd.npt=0');
    expect(l1ExtraWords({ TSVMM_SANDBOX_L1_THP: 'never', TSVMM_SANDBOX_APPEND: 'kvm_amd.npt=0' })).to.equal(
      ' transparent_hugepage=never kvm_amd.npt=0',
    );
  });

  it('takes the mode from TSVMM_SANDBOX_L1_THP, and an experiment that names THP itself wins', () => {
    expect(l1ExtraWords({ TSVMM_SANDBOX_L1_THP: 'always' })).to.equal(' transparent_hugepage=always');
    expect(l1ExtraWords({ TSVMM_SANDBOX_APPEND: 'transparent_hugepage=madvise' })).to.equal(
      ' transparent_hugepage=madvise',
    );
  });

  it('refuses a mode the kernel does not know', () => {
    expect(() => l1ExtraWords({ TSVMM_SANDBOX_L1_THP: 'sometimes' })).to.throw(/TSVMM_SANDBOX_L1_THP/);
  });
});
