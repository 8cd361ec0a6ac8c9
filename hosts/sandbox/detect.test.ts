import { expect } from 'chai';
import { describeKvmHost, detectHost, type DetectSources } from './detect.js';

const host = (files: string[], flags: string, env: NodeJS.ProcessEnv = {}): DetectSources => ({
  exists: (p) => files.includes(p),
  read: (p) => (p === '/proc/cpuinfo' ? `processor\t: 0\nflags\t\t: fpu ${flags} sse2\n` : ''),
  env,
});

describe('sandbox host detection', () => {
  it('hardware KVM: vmx + kvm_intel boots Linux directly', () => {
    const h = detectHost(host(['/dev/kvm', '/sys/module/kvm_intel'], 'vmx'));
    expect(h).to.include({ kind: 'hardware', canBootLinux: true, cpuFlag: 'vmx', module: 'kvm_intel' });
    expect(describeKvmHost(h)).to.match(/Linux guests run directly/);
  });

  it('PVM: /sys/module/kvm_pvm means no Linux boot, and the message says to use --sandbox', () => {
    const h = detectHost(host(['/dev/kvm', '/sys/module/kvm_pvm'], ''));
    expect(h).to.include({ kind: 'pvm', canBootLinux: false });
    expect(describeKvmHost(h))
      .to.match(/PVM/)
      .and.match(/vmm run --sandbox/);
  });

  it('svm flag without kvm_amd loaded is not enough', () => {
    expect(detectHost(host(['/dev/kvm'], 'svm')).kind).to.equal('unknown');
  });

  it('no /dev/kvm', () => {
    const h = detectHost(host([], 'vmx'));
    expect(h).to.include({ kind: 'none', devKvm: false, canBootLinux: false });
    expect(describeKvmHost(h)).to.match(/no \/dev\/kvm/);
  });

  it('knows when it runs inside the sandbox', () => {
    expect(detectHost(host(['/dev/kvm', '/sys/module/kvm_amd'], 'svm', { TSVMM_IN_SANDBOX: '1' })).inSandbox).to.equal(
      true,
    );
  });
});
