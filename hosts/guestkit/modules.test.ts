import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { moduleDepends, resolveModules } from './modules.js';

const ko = (deps: string) => Buffer.from(`\x7fELF....\0license=GPL\0depends=${deps}\0retpoline=Y\0`, 'latin1');

describe('guestkit module ordering', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mods-'));
    const put = (p: string, deps: string) => {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      writeFileSync(join(dir, p), ko(deps));
    };
    put('kernel/drivers/virtio/virtio_ring.ko', '');
    put('kernel/drivers/virtio/virtio.ko', '');
    put('kernel/drivers/virtio/virtio_pci.ko', 'virtio_ring,virtio_pci_modern_dev,virtio');
    put('kernel/drivers/virtio/virtio_pci_modern_dev.ko', '');
    put('kernel/drivers/net/virtio_net.ko', 'virtio_ring,virtio,net_failover');
    put('kernel/drivers/net/net_failover.ko', 'failover');
    put('kernel/net/core/failover.ko', '');
    put('kernel/arch/x86/kvm/kvm-amd.ko', 'kvm');
    put('kernel/arch/x86/kvm/kvm.ko', 'irqbypass');
    put('kernel/virt/lib/irqbypass.ko', '');
    writeFileSync(join(dir, 'modules.builtin'), 'kernel/fs/ext4/ext4.ko\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads depends= from modinfo', () => {
    expect(moduleDepends(ko('a,b-c'))).to.deep.equal(['a', 'b_c']);
    expect(moduleDepends(ko(''))).to.deep.equal([]);
  });

  it('puts dependencies first, keeps the asked order otherwise, treats - and _ alike', () => {
    const order = resolveModules([{ name: 'virtio_net' }, { name: 'virtio_pci' }, { name: 'kvm_amd' }], dir);
    const names = order.map((p) => p.split('/').pop());
    expect(names).to.deep.equal([
      'virtio_ring.ko',
      'virtio.ko',
      'failover.ko',
      'net_failover.ko',
      'virtio_net.ko',
      'virtio_pci_modern_dev.ko',
      'virtio_pci.ko',
      'irqbypass.ko',
      'kvm.ko',
      'kvm-amd.ko',
    ]);
  });

  it('skips built-in and optional-missing modules; a missing required one is an error', () => {
    expect(resolveModules([{ name: 'ext4' }, { name: 'nope', optional: true }], dir)).to.deep.equal([]);
    expect(() => resolveModules([{ name: 'nope' }], dir)).to.throw(/nope is neither/);
  });
});
