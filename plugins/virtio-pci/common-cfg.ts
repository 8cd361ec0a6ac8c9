import type { SplitQueue } from '../virtio/split-queue.js';
import { Common } from './layout.js';
import type { VirtioPciTransport } from './transport.js';

/** Width in bytes of each field of the common configuration structure (virtio 1.2 §4.1.4.3). */
const WIDTH: ReadonlyMap<number, number> = new Map([
  [Common.deviceFeatureSelect, 4],
  [Common.deviceFeature, 4],
  [Common.driverFeatureSelect, 4],
  [Common.driverFeature, 4],
  [Common.msixConfig, 2],
  [Common.numQueues, 2],
  [Common.deviceStatus, 1],
  [Common.configGeneration, 1],
  [Common.queueSelect, 2],
  [Common.queueSize, 2],
  [Common.queueMsixVector, 2],
  [Common.queueEnable, 2],
  [Common.queueNotifyOff, 2],
  [Common.queueDesc, 8],
  [Common.queueDriver, 8],
  [Common.queueDevice, 8],
  [Common.queueNotifConfigData, 2],
  [Common.queueReset, 2],
]);

/** The 64-bit queue address fields, by offset. */
const ADDRESS_FIELDS = [Common.queueDesc, Common.queueDriver, Common.queueDevice] as const;

/**
 * Which field an access of `size` bytes at `off` reaches, and which part of it: the field's own width,
 * or one 32-bit half of a 64-bit field (how drivers write them). Undefined for anything else.
 */
function fieldOf(off: number, size: number): { field: number; shift: bigint } | undefined {
  const w = WIDTH.get(off);
  if (w === size) return { field: off, shift: 0n };
  if (size === 4) {
    if (w === 8) return { field: off, shift: 0n };
    if (WIDTH.get(off - 4) === 8) return { field: off - 4, shift: 32n };
  }
  return undefined;
}

const addressOf = (q: SplitQueue, field: number): bigint =>
  field === Common.queueDesc ? q.descTable : field === Common.queueDriver ? q.availRing : q.usedRing;

/** The value a read of the common structure returns, or undefined when the access is not a field's. */
export function readCommon(t: VirtioPciTransport, off: number, size: number): number | bigint | undefined {
  const at = fieldOf(off, size);
  if (!at) return undefined;
  const n = t.session.negotiation;
  const q = t.selectedQueue;
  switch (at.field) {
    case Common.deviceFeatureSelect:
      return t.deviceFeatureSelect;
    case Common.deviceFeature:
      return n.deviceFeatureWord(t.deviceFeatureSelect);
    case Common.driverFeatureSelect:
      return t.driverFeatureSelect;
    case Common.driverFeature:
      return n.driverFeatureWord(t.driverFeatureSelect);
    case Common.msixConfig:
      return t.msixConfig;
    case Common.numQueues:
      return t.queues.length;
    case Common.deviceStatus:
      return t.session.driverStatus; // not 0 while a reset waits for requests in flight
    case Common.configGeneration:
      return t.configGeneration;
    case Common.queueSelect:
      return t.queueSelect;
    case Common.queueSize:
      return q?.size ?? 0; // 0: no such queue
    case Common.queueMsixVector:
      return q ? t.queueVectors[t.queueSelect] : 0xffff;
    case Common.queueEnable:
      return q?.ready ? 1 : 0;
    case Common.queueNotifyOff:
      return q ? t.queueSelect : 0; // queue i is notified at i * notify_off_multiplier
    case Common.queueNotifConfigData:
      return q ? t.queueSelect : 0;
    case Common.queueReset:
      return 0; // VIRTIO_F_RING_RESET is not offered
  }
  if (!q) return 0;
  const v = addressOf(q, at.field);
  return size === 8 ? v : Number((v >> at.shift) & 0xffff_ffffn);
}

/**
 * Applies a write to the common structure. Returns false when the access is not a field's or the field
 * is read-only (ignored, counted by the caller); refusals the rules demand are logged by `t.refuse`.
 */
export function writeCommon(t: VirtioPciTransport, off: number, size: number, value: number | bigint): boolean {
  const at = fieldOf(off, size);
  if (!at) return false;
  const v = Number(BigInt(value) & 0xffff_ffffn);
  switch (at.field) {
    case Common.deviceFeatureSelect:
      t.deviceFeatureSelect = v;
      return true;
    case Common.driverFeatureSelect:
      t.driverFeatureSelect = v;
      return true;
    case Common.driverFeature:
      return t.session.negotiation.setDriverFeatureWord(t.driverFeatureSelect, v);
    case Common.msixConfig:
      t.msixConfig = t.vectorOrNone(v, 'msix_config');
      return true;
    case Common.deviceStatus:
      t.writeStatus(v);
      return true;
    case Common.queueSelect:
      t.queueSelect = v;
      return true;
    case Common.queueMsixVector:
      if (!t.selectedQueue) return t.refuse(`queue_msix_vector for queue ${t.queueSelect}, which does not exist`);
      t.queueVectors[t.queueSelect] = t.vectorOrNone(v, `queue_msix_vector of queue ${t.queueSelect}`);
      return true;
    case Common.queueSize:
    case Common.queueEnable:
    case Common.queueDesc:
    case Common.queueDriver:
    case Common.queueDevice:
      return writeQueueField(t, at.field, at.shift, size, BigInt(value));
    default:
      return false; // read-only
  }
}

/** Queue layout writes: only for an existing, not yet enabled queue between FEATURES_OK and DRIVER_OK. */
function writeQueueField(t: VirtioPciTransport, field: number, shift: bigint, size: number, value: bigint): boolean {
  const q = t.selectedQueue;
  const name = `queue ${t.queueSelect}`;
  if (!q) return t.refuse(`a layout write for ${name}, which does not exist`);
  if (!t.session.queuesConfigurable)
    return t.refuse(`a layout write for ${name} in device status 0x${t.session.status.toString(16)}`);
  if (field === Common.queueEnable) {
    if (value !== 1n) return t.refuse(`queue_enable ${value} for ${name} (only 1 may be written)`);
    q.ready = true;
    return true;
  }
  if (q.ready) return t.refuse(`a layout write for ${name}, which is already enabled`);
  if (field === Common.queueSize) {
    const n = Number(value);
    if (n === 0 || n > q.maxSize) return t.refuse(`queue_size ${n} for ${name} (maximum ${q.maxSize})`);
    q.size = n;
    return true;
  }
  const cur = addressOf(q, field);
  const next = size === 8 ? value : (cur & ~(0xffff_ffffn << shift)) | ((value & 0xffff_ffffn) << shift);
  if (field === ADDRESS_FIELDS[0]) q.descTable = next;
  else if (field === ADDRESS_FIELDS[1]) q.availRing = next;
  else q.usedRing = next;
  return true;
}
