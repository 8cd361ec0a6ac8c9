import { GuestAddress } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { VIRTIO_F_VERSION_1, type VirtioActivation } from '../../core/virtio/virtio.js';
import { SplitQueue } from '../virtio/split-queue.js';
import { FakeEventSystem, MockSplitQueue } from '../virtio/testing.js';
import { HDR_SIZE, HOST_CID, Op, VSOCK_TYPE_STREAM } from './constants.js';
import { VirtioVsock } from './device.js';
import { decodeHeader, encodeHeader, type VsockHeader, type VsockPacket } from './packet.js';

/** The guest CID the bench uses. */
export const GUEST_CID = 3n;
/** Bytes of each RX buffer the bench's driver gives (as Linux: 4 KiB of payload after the header). */
export const RX_BUF = HDR_SIZE + 4096;

/** A VirtioVsock activated on MockSplitQueues: the test plays the guest driver over real host Unix sockets. */
export interface VsockBench {
  dev: VirtioVsock;
  memory: GuestMemory;
  events: FakeEventSystem;
  rx: MockSplitQueue;
  tx: MockSplitQueue;
  event: MockSplitQueue;
  activation: VirtioActivation;
  resets: string[];
  /** Sends one packet from the guest (fields default to a stream packet from GUEST_CID to the host). */
  send(h: Partial<VsockHeader>, data?: Uint8Array): void;
  /** Packets the device put into RX buffers since the last call (each buffer is given back to the driver). */
  received(): VsockPacket[];
  /** Resolves with received packets once `pred` holds for the ones received so far (bounded by a deadline). */
  until(pred: (all: VsockPacket[]) => boolean, what: string): Promise<VsockPacket[]>;
}

/** Builds and activates a VirtioVsock on `udsPath` with `rxBuffers` RX buffers posted. */
export async function vsockBench(udsPath: string, rxBuffers = 32): Promise<VsockBench> {
  const memory = testGuestMemory(8 << 20);
  const events = new FakeEventSystem();
  const dev = new VirtioVsock({ id: 'vsock0', guestCid: GUEST_CID, udsPath, queueSize: 64 }, events.loop);
  await dev.listen();
  const drv = [0, 1, 2].map((i) => new MockSplitQueue(memory, 64, BigInt(0x100000 * (i + 1))));
  const queues = drv.map((d, i) => {
    const q = new SplitQueue(i, 64);
    d.configure(q);
    q.activate(memory, VIRTIO_F_VERSION_1);
    return q;
  });
  const resets: string[] = [];
  let signalled: () => void = () => {};
  const activation: VirtioActivation = {
    features: VIRTIO_F_VERSION_1,
    memory,
    queues,
    queueEvents: queues.map(() => events.factory.create()),
    interrupt: { signalUsedQueue: () => signalled(), signalConfigChange: () => {} },
    needsReset: (r) => resets.push(r),
  };
  const [rx, tx, event] = drv as [MockSplitQueue, MockSplitQueue, MockSplitQueue];
  const bufs = new Map<number, bigint>();
  const post = (addr?: bigint): void => {
    const at = addr ?? rx.alloc(RX_BUF);
    bufs.set(rx.addChain([{ addr: at, len: RX_BUF, write: true }]), at);
  };
  for (let i = 0; i < rxBuffers; i++) post();
  dev.activate(activation);
  const received = (): VsockPacket[] => {
    const out: VsockPacket[] = [];
    for (const u of rx.readUsed()) {
      const at = bufs.get(u.id)!;
      if (u.len >= HDR_SIZE) {
        const hdr = decodeHeader(memory.read(GuestAddress.of(at), HDR_SIZE));
        out.push({ hdr, data: memory.read(GuestAddress.of(at + BigInt(HDR_SIZE)), u.len - HDR_SIZE) });
      }
      post(at);
    }
    if (out.length) dev.processRx(); // the driver kicks after refilling
    return out;
  };
  const all: VsockPacket[] = [];
  const bench: VsockBench = {
    dev,
    memory,
    events,
    rx,
    tx,
    event,
    activation,
    resets,
    send(h, data = new Uint8Array(0)) {
      const hdr: VsockHeader = {
        srcCid: GUEST_CID,
        dstCid: HOST_CID,
        srcPort: 1234,
        dstPort: 5000,
        len: data.length,
        type: VSOCK_TYPE_STREAM,
        op: Op.Rw,
        flags: 0,
        bufAlloc: 1 << 20,
        fwdCnt: 0,
        ...h,
      };
      const bytes = new Uint8Array(HDR_SIZE + data.length);
      bytes.set(encodeHeader(hdr));
      bytes.set(data, HDR_SIZE);
      tx.addChain([{ addr: tx.alloc(bytes.length, bytes), len: bytes.length }]);
      dev.processTx();
    },
    received,
    until(pred, what) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => {
          clearInterval(poll);
          reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(all.map((p) => p.hdr.op))}`));
        }, 5000);
        const check = (): void => {
          all.push(...received());
          if (!pred(all)) return;
          clearTimeout(deadline);
          clearInterval(poll);
          signalled = () => {};
          resolve(all.splice(0));
        };
        signalled = () => setImmediate(check);
        const poll = setInterval(check, 5); // socket events arrive on Node's loop; check their effect
        check();
      });
    },
  };
  return bench;
}
