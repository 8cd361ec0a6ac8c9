import { expect } from 'chai';
import { MockDiskBackend } from '../../core/testing/mock-disk.js';
import { VirtioBlk } from '../virtio-blk/device.js';
import { FakeEventSystem } from '../virtio/testing.js';
import type { VmParts } from './vm-parts.js';
import { quiesce } from './pause.js';

/** Just the parts quiesce uses: a started VM whose machine pauses at once, with `devices` registered. */
function partsWith(devices: object[]): VmParts {
  return {
    lifecycle: { state: 'started' },
    machine: { pause: async () => {} },
    devices: { all: () => devices },
  } as unknown as VmParts;
}

describe('migration pause: the disk files of a paused VM hold every write the guest was told is done', () => {
  it('flushes each writable virtio-blk disk once idle (qcow2 metadata waits for FLUSH otherwise); not on a migration source, not read-only disks', async () => {
    const events = new FakeEventSystem();
    const disk = (readOnly = false) => new MockDiskBackend(1 << 20, readOnly);
    const [a, b, ro] = [disk(), disk(), disk(true)];
    const blk = (d: MockDiskBackend, id: string) => new VirtioBlk({ id, disk: d }, events.loop);
    // a transport holds its model as `device`, as virtio-mmio and virtio-pci do
    await quiesce(partsWith([{ device: blk(a, 'a') }, { device: blk(ro, 'ro') }]));
    await quiesce(partsWith([{ device: blk(b, 'b') }]), { persist: false });
    expect([a.ops.flush, ro.ops.flush, b.ops.flush]).to.deep.equal([1, 0, 0]);
  });
});
