import { expect } from 'chai';
import { kvmHostCheck } from './host-check.js';
import type { HostInfo } from './host-kind.js';
import plugin from './plugin.js';

const host = (kind: HostInfo['kind'], module?: string): HostInfo => ({
  kind,
  devKvm: kind !== 'none',
  module,
  canBootLinux: kind === 'hardware',
  inSandbox: false,
});

describe('kvm host check', () => {
  it('explains PVM and a missing /dev/kvm and points at --sandbox; says nothing where KVM boots Linux', () => {
    expect(kvmHostCheck(host('pvm', 'kvm_pvm')))
      .to.match(/PVM/)
      .and.contain('vmm run --sandbox');
    expect(kvmHostCheck(host('none')))
      .to.match(/no \/dev\/kvm/)
      .and.contain('vmm run --sandbox');
    expect(kvmHostCheck(host('hardware', 'kvm_amd'))).to.equal(undefined);
    expect(kvmHostCheck(host('unknown'))).to.equal(undefined);
  });
  it('is the plugin module hook', () => {
    expect(plugin.hostCheck).to.be.a('function');
  });
});
