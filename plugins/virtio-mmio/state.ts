import { z } from 'zod';
import { u32, u64, u8 } from '../../core/state/codecs.js';
import { readSnapshot, restoreSnapshot, takeSnapshot } from '../../core/state/persist.js';
import { defineState, isSnapshottable, SavedStateSchema } from '../../core/state/snapshottable.js';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { DeviceStatus } from '../virtio/constants.js';
import type { SplitQueueProgress } from '../virtio/split-queue.js';
import { checkQueueState, loadQueueState, QueueStateSchema, saveQueue } from '../virtio/state.js';
import type { VirtioMmioTransport } from './device.js';
import { VirtioMmioError } from './errors.js';

/** Upper bound on queues in a saved transport state. */
const MAX_SAVED_QUEUES = 1024;

/**
 * The saved state of one virtio-mmio transport: device status and negotiated features, the
 * register selectors, InterruptStatus, the config generation, every queue, and (nested, when the
 * device model is Snapshottable) the device model's own saved state: restored before the transport
 * re-activates the device.
 */
export const TransportStateSpec = defineState({
  name: 'virtio-mmio transport',
  version: 1,
  schema: z.strictObject({
    deviceType: u32,
    status: u8,
    driverFeatures: u64,
    deviceFeaturesSel: u32,
    driverFeaturesSel: u32,
    queueSel: u32,
    interruptStatus: z.number().int().min(0).max(3),
    configGeneration: u32,
    activated: z.boolean(),
    queues: z.array(QueueStateSchema).max(MAX_SAVED_QUEUES),
    device: SavedStateSchema.nullable(),
  }),
});

/** The in-memory form of a transport's state. */
export type TransportState = z.output<typeof TransportStateSpec.schema>;

/** The transport's state now (with the device model's, when it has one). */
export function saveTransport(t: VirtioMmioTransport): TransportState {
  const n = t.negotiation.save();
  return {
    deviceType: t.device.deviceType,
    status: n.status,
    driverFeatures: n.driverFeatures,
    deviceFeaturesSel: t.deviceFeaturesSel,
    driverFeaturesSel: t.driverFeaturesSel,
    queueSel: t.queueSel,
    interruptStatus: t.interruptStatus,
    configGeneration: t.configGeneration,
    activated: t.activated,
    queues: t.queues.map((q) => saveQueue(q)),
    device: isSnapshottable(t.device) ? takeSnapshot(t.device) : null,
  };
}

/** Refuses a (schema-valid) state that does not fit this transport and its device. Changes nothing. */
export function checkTransport(t: VirtioMmioTransport, s: TransportState): void {
  const bad = (why: string): never => {
    throw new VirtioMmioError('InvalidState', why, { id: t.id });
  };
  if (s.deviceType !== t.device.deviceType) bad(`it is for device type ${s.deviceType}, not ${t.device.deviceType}`);
  if (s.queues.length !== t.queues.length) bad(`it has ${s.queues.length} queues, the device ${t.queues.length}`);
  if (s.status & DeviceStatus.FEATURES_OK) {
    if ((s.driverFeatures & ~t.device.deviceFeatures) !== 0n) bad('it accepts features the device does not offer');
    if ((s.driverFeatures & VIRTIO_F_VERSION_1) === 0n) bad('it lacks VIRTIO_F_VERSION_1');
  }
  if (s.activated && !(s.status & DeviceStatus.DRIVER_OK)) bad('it is activated without DRIVER_OK');
  if (!s.activated && s.queues.some((q) => q.active)) bad('a queue is active on an inactive device');
  t.queues.forEach((q, i) => checkQueueState(q, s.queues[i]!));
  if (isSnapshottable(t.device)) {
    if (s.device === null) bad(`it lacks the state of device '${t.device.id}'`);
    readSnapshot(t.device, s.device);
  } else if (s.device !== null) bad(`it holds device state, but device '${t.device.id}' keeps none`);
}

/**
 * Loads a checked state: the queues' layout, the device model's state, then the transport's
 * fields. Returns whether the device was active and each active queue's progress, for the caller
 * to re-activate (which validates the rings against guest memory).
 */
export function loadTransport(
  t: VirtioMmioTransport,
  s: TransportState,
): { activated: boolean; progress: (SplitQueueProgress | undefined)[] } {
  const progress = t.queues.map((q, i) => loadQueueState(q, s.queues[i]!));
  if (isSnapshottable(t.device) && s.device) restoreSnapshot(t.device, s.device);
  t.applyRestored(s);
  return { activated: s.activated, progress };
}
