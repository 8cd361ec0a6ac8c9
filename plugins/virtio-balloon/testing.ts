import type { Logger } from '../../core/logger.js';
import { GuestAddress } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1, type VirtioActivation } from '../../core/virtio/virtio.js';
import { SplitQueue } from '../virtio/split-queue.js';
import { FakeEventSystem, MockSplitQueue } from '../virtio/testing.js';
import { BALLOON_PAGE } from './constants.js';
import { VirtioBalloon, type VirtioBalloonOptions } from './device.js';

/** A VirtioBalloon activated on MockSplitQueues (the test plays the driver), with what the test inspects. */
export interface BalloonBench {
  dev: VirtioBalloon;
  memory: GuestMemory;
  events: FakeEventSystem;
  /** The driver side of each queue, in the device's numbering for the negotiated features. */
  queues: MockSplitQueue[];
  /** Queues whose used ring the device signalled; -1 for a config change. */
  signals: number[];
  resets: string[];
  /** What the device was activated with (a test re-activates with it, as a transport's restore does). */
  activation: VirtioActivation;
  /** Serves everything the driver published (what the queue notifications do). */
  kick(): void;
}

/** PFNs as the Linux driver sends them: le32 each. */
export function pfnBytes(pfns: readonly number[]): Uint8Array {
  const b = new Uint8Array(pfns.length * 4);
  pfns.forEach((p, i) => new DataView(b.buffer).setUint32(i * 4, p, true));
  return b;
}

/**
 * Builds a balloon over `memory` (default 4 MiB of heap memory) and activates it with `features`
 * (default: everything it offers), as a transport would at DRIVER_OK: queue i's rings at 64 KiB * (i + 1).
 */
export function balloonBench(
  opts: Partial<VirtioBalloonOptions> & { memory?: GuestMemory; features?: bigint; logger?: Logger } = {},
): BalloonBench {
  const memory = opts.memory ?? testGuestMemory(4 << 20);
  const events = new FakeEventSystem();
  const dev = new VirtioBalloon(
    { id: 'balloon0', memorySize: memory.size, queueSize: 16, defer: (cb) => cb(), ...opts },
    events.loop,
    opts.logger,
  );
  const features = opts.features ?? dev.deviceFeatures | VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX;
  const signals: number[] = [];
  const resets: string[] = [];
  const interrupt = { signalUsedQueue: (i: number) => signals.push(i), signalConfigChange: () => signals.push(-1) };
  dev.configInterrupt = interrupt;
  const queues: MockSplitQueue[] = [];
  const device: SplitQueue[] = [];
  dev.queueMaxSizes.forEach((size, i) => {
    const drv = new MockSplitQueue(memory, size, BigInt(0x10000 * (i + 1)));
    const q = new SplitQueue(i, size);
    drv.configure(q);
    q.activate(memory, features);
    queues.push(drv);
    device.push(q);
  });
  const activation: VirtioActivation = {
    features,
    memory,
    queues: device,
    queueEvents: device.map(() => events.factory.create()),
    interrupt,
    needsReset: (r) => resets.push(r),
  };
  dev.activate(activation);
  return { dev, memory, events, queues, signals, resets, activation, kick: () => dev.process() };
}

/** Fills guest page `pfn` with `value` (to see a release zero it). */
export function touchPage(memory: GuestMemory, pfn: number, value: number): void {
  memory.fill(GuestAddress.of(BigInt(pfn) * BigInt(BALLOON_PAGE)), BALLOON_PAGE, value);
}
