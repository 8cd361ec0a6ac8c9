import { expect } from 'chai';
import { KvmConfigSchema } from './config.js';

describe('kvm plugin config', () => {
  it('defaults to /dev/kvm, eventfd notification and the capabilities the VMM relies on', () => {
    const c = KvmConfigSchema.parse({});
    expect(c.devicePath).to.equal('/dev/kvm');
    expect(c.notify).to.equal('eventfd');
    expect(c.requireCapabilities).to.include.members(['IRQFD', 'IOEVENTFD']);
  });
  it('rejects unknown keys and malformed capability names', () => {
    expect(KvmConfigSchema.safeParse({ device: '/dev/kvm' }).success).to.equal(false);
    expect(KvmConfigSchema.safeParse({ requireCapabilities: ['irqfd; rm -rf'] }).success).to.equal(false);
    expect(KvmConfigSchema.safeParse({ notify: 'poll' }).success).to.equal(false);
  });
});
