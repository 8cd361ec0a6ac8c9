import type { GuestMemory } from 'tsvmm';
import {
  MockSplitQueue,
  SplitQueue,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_VERSION_1,
  testGuestMemory,
  type VirtioActivation,
} from 'tsvmm/virtio';
import { FakeEventFdFactory } from 'tsvmm/testing';
import { VirtioRng } from '../src/device.js';

/** A VirtioRng activated on a MockSplitQueue (the test plays the driver), with what the test inspects. */
export interface RngBench {
  dev: VirtioRng;
  memory: GuestMemory;
  drv: MockSplitQueue;
  /** Queues whose used ring the device signalled. */
  signals: number[];
  /** Reasons the device asked for DEVICE_NEEDS_RESET. */
  resets: string[];
}

/** Builds a VirtioRng and activates it as a transport would at DRIVER_OK (no transport involved). */
export function rngBench(opts: { queueSize?: number; fill?: (b: Uint8Array) => void } = {}): RngBench {
  const size = opts.queueSize ?? 16;
  const memory = testGuestMemory(1 << 20);
  const dev = new VirtioRng({ id: 'rng0', queueSize: size, fill: opts.fill, defer: (cb) => cb() });
  const drv = new MockSplitQueue(memory, size);
  const q = new SplitQueue(0, size);
  drv.configure(q);
  const features = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX;
  q.activate(memory, features);
  const signals: number[] = [];
  const resets: string[] = [];
  const activation: VirtioActivation = {
    features,
    memory,
    queues: [q],
    queueEvents: [new FakeEventFdFactory().create()],
    interrupt: { signalUsedQueue: (i) => signals.push(i), signalConfigChange: () => {} },
    needsReset: (r) => resets.push(r),
  };
  dev.activate(activation);
  return { dev, memory, drv, signals, resets };
}
