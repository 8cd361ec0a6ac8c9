import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestAddress } from '../../core/address.js';
import { restoreSnapshot, takeSnapshot } from '../../core/state/persist.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { FakeEventSystem } from '../virtio/testing.js';
import { VirtioVsock } from './device.js';
import { vsockBench } from './testing.js';

describe('virtio-vsock: state', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsock-state-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips; the restored driver gets a TRANSPORT_RESET event', async () => {
    const b = await vsockBench(path.join(dir, 'a.sock'));
    try {
      const ev = b.event.alloc(4);
      b.memory.write(GuestAddress.of(ev), Uint8Array.of(0xff, 0xff, 0xff, 0xff));
      b.event.addChain([{ addr: ev, len: 4, write: true }]);
      b.dev.process();
      expect(b.event.readUsed()).to.deep.equal([]); // kept until there is an event
      const fresh = new VirtioVsock(
        { id: 'vsock0', guestCid: 3n, udsPath: path.join(dir, 'b.sock'), queueSize: 64 },
        new FakeEventSystem().loop,
      );
      const { first, second } = roundTripState(b.dev, fresh);
      expect(second).to.deep.equal(first);
      expect(first.data).to.deep.equal({ guestCid: 3, queueSize: 64 });
      restoreSnapshot(b.dev, first);
      b.dev.activate(b.activation); // what the transport's restore does
      expect(b.event.readUsed()).to.deep.equal([{ id: 0, len: 4 }]);
      expect([...b.memory.read(GuestAddress.of(ev), 4)]).to.deep.equal([0, 0, 0, 0]);
    } finally {
      await b.dev.destroy();
    }
  });

  it('refuses another CID or queue size, and hostile states', async () => {
    const b = await vsockBench(path.join(dir, 'a.sock'));
    try {
      const saved = takeSnapshot(b.dev);
      expect(
        hostileStateProblems(b.dev, [
          withData(saved, (d) => ({ ...d, guestCid: 4 })),
          withData(saved, (d) => ({ ...d, guestCid: 2 })),
          withData(saved, (d) => ({ ...d, queueSize: 128 })),
          withData(saved, (d) => ({ ...d, connections: [] })),
        ]),
      ).to.deep.equal([]);
    } finally {
      await b.dev.destroy();
    }
  });
});
