import { z } from 'zod';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { DeviceStatus } from '../virtio/constants.js';
import type { SplitQueueProgress } from '../virtio/split-queue.js';
import { restoreQueue, saveQueue } from '../virtio/state.js';
import type { VirtioMmioTransport } from './device.js';
import { VirtioMmioError } from './errors.js';

export const TRANSPORT_STATE_VERSION = 1;

const U32 = z.number().int().min(0).max(0xffff_ffff);

/** Persisted state of one virtio-mmio transport (version 1); the device model saves its own. */
export const TransportStateSchema = z.strictObject({
  version: z.literal(TRANSPORT_STATE_VERSION),
  deviceId: z.string(),
  deviceType: U32,
  status: z.number().int().min(0).max(0xff),
  driverFeatures: z
    .string()
    .regex(/^\d{1,20}$/)
    .transform((s) => BigInt(s))
    .refine((v) => v < 1n << 64n, 'not a u64'),
  deviceFeaturesSel: U32,
  driverFeaturesSel: U32,
  queueSel: U32,
  interruptStatus: z.number().int().min(0).max(3),
  configGeneration: U32,
  activated: z.boolean(),
  queues: z.array(z.unknown()).max(1024),
});
export type TransportState = z.input<typeof TransportStateSchema>;

export function saveTransport(t: VirtioMmioTransport): TransportState {
  const n = t.negotiation.save();
  return {
    version: TRANSPORT_STATE_VERSION,
    deviceId: t.device.id,
    deviceType: t.device.deviceType,
    status: n.status,
    driverFeatures: n.driverFeatures.toString(),
    deviceFeaturesSel: t.deviceFeaturesSel,
    driverFeaturesSel: t.driverFeaturesSel,
    queueSel: t.queueSel,
    interruptStatus: t.interruptStatus,
    configGeneration: t.configGeneration,
    activated: t.activated,
    queues: t.queues.map((q) => saveQueue(q)),
  };
}

/**
 * Validates an untrusted saved state against this transport's device and loads it.
 * Returns whether the device was active and each queue's ring progress, for the
 * caller to re-activate (which re-validates the rings against guest memory).
 */
export function restoreTransport(
  t: VirtioMmioTransport,
  state: unknown,
): { activated: boolean; progress: (SplitQueueProgress | undefined)[] } {
  const r = TransportStateSchema.safeParse(state);
  if (!r.success)
    throw new VirtioMmioError('InvalidState', `${t.id}: saved transport state is invalid: ${r.error.message}`, {
      id: t.id,
    });
  const s = r.data;
  const bad = (why: string): never => {
    throw new VirtioMmioError('InvalidState', `${t.id}: saved transport state ${why}`, { id: t.id });
  };
  if (s.deviceType !== t.device.deviceType) bad(`is for device type ${s.deviceType}, not ${t.device.deviceType}`);
  if (s.queues.length !== t.queues.length) bad(`has ${s.queues.length} queues, the device ${t.queues.length}`);
  if (s.status & DeviceStatus.FEATURES_OK) {
    if ((s.driverFeatures & ~t.device.deviceFeatures) !== 0n) bad('accepts features the device does not offer');
    if ((s.driverFeatures & VIRTIO_F_VERSION_1) === 0n) bad('lacks VIRTIO_F_VERSION_1');
  }
  if (s.activated && !(s.status & DeviceStatus.DRIVER_OK)) bad('is activated without DRIVER_OK');
  let restored: ReturnType<typeof restoreQueue>[];
  try {
    restored = t.queues.map((q, i) => restoreQueue(q, s.queues[i]));
  } catch (err) {
    throw new VirtioMmioError('InvalidState', `${t.id}: ${(err as Error).message}`, { id: t.id }, { cause: err });
  }
  t.applyRestored(s);
  return { activated: s.activated, progress: restored.map((q) => (q.active ? q.progress : undefined)) };
}
