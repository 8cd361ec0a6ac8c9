import { z } from 'zod';
import { bytes, u16, u32, u64, u8 } from '../../core/state/codecs.js';
import { MSIX_ENTRY_SIZE } from '../pci/msix.js';
import { readSnapshot, restoreSnapshot, takeSnapshot } from '../../core/state/persist.js';
import { defineState, isSnapshottable, SavedStateSchema } from '../../core/state/snapshottable.js';
import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { DeviceStatus } from '../virtio/constants.js';
import { checkQueueState, loadQueueState, QueueStateSchema, saveQueue } from '../virtio/state.js';
import { VirtioPciError } from './errors.js';
import type { VirtioPciFunction } from './function.js';
import { MAX_QUEUES, VIRTIO_MSI_NO_VECTOR } from './layout.js';

/** Configuration space bytes compared on restore: vendor, device, revision, class, subsystem ids. */
const IDENTITY = [
  [0x00, 4],
  [0x08, 4],
  [0x2c, 4],
] as const;

/**
 * The saved state of one virtio-pci function: its configuration space (command, BARs, MSI-X control,
 * the PCI configuration access capability's fields), the MSI-X table and pending bits, the virtio registers (status,
 * negotiated features, selectors, vectors, ISR, config generation), every queue, and (nested, when the
 * device model is Snapshottable) the device model's own saved state, restored before re-activation.
 */
export const FunctionStateSpec = defineState({
  name: 'virtio-pci function',
  version: 1,
  schema: z.strictObject({
    deviceType: u32,
    config: bytes(4096),
    msixTable: bytes((MAX_QUEUES + 1) * MSIX_ENTRY_SIZE),
    /** Vectors whose pending bit (PBA) was set: raised while masked, delivered at unmask (absent: none). */
    msixPending: z
      .array(u16)
      .max(MAX_QUEUES + 1)
      .optional(),
    status: u8,
    driverFeatures: u64,
    deviceFeatureSelect: u32,
    driverFeatureSelect: u32,
    queueSelect: u16,
    msixConfig: u16,
    queueVectors: z.array(u16).max(MAX_QUEUES),
    isr: z.number().int().min(0).max(3),
    configGeneration: u8,
    activated: z.boolean(),
    queues: z.array(QueueStateSchema).max(MAX_QUEUES),
    device: SavedStateSchema.nullable(),
  }),
});

/** The in-memory form of a function's state. */
export type FunctionState = z.output<typeof FunctionStateSpec.schema>;

/** The function's state now (with the device model's, when it has one). */
export function saveFunction(f: VirtioPciFunction): FunctionState {
  const t = f.transport;
  const n = t.session.negotiation.save();
  const config = new Uint8Array(f.configSize);
  for (let i = 0; i < config.length; i++) config[i] = f.config.get(i, 1);
  const msixTable = new Uint8Array(f.msix.vectors * MSIX_ENTRY_SIZE);
  f.msix.readTable(0n, msixTable);
  const pba = new Uint8Array(Math.ceil(f.msix.vectors / 8));
  f.msix.readPba(0n, pba);
  const msixPending = [...Array(f.msix.vectors).keys()].filter((i) => pba[i >> 3]! & (1 << (i & 7)));
  return {
    deviceType: f.device.deviceType,
    config,
    msixTable: msixTable,
    msixPending,
    status: n.status,
    driverFeatures: n.driverFeatures,
    deviceFeatureSelect: t.deviceFeatureSelect >>> 0,
    driverFeatureSelect: t.driverFeatureSelect >>> 0,
    queueSelect: t.queueSelect & 0xffff,
    msixConfig: t.msixConfig,
    queueVectors: [...t.queueVectors],
    isr: t.isr,
    configGeneration: t.configGeneration,
    activated: t.activated,
    queues: t.queues.map((q) => saveQueue(q)),
    device: isSnapshottable(f.device) ? takeSnapshot(f.device) : null,
  };
}

/** Refuses a (schema-valid) state that does not fit this function and its device. Changes nothing. */
export function checkFunction(f: VirtioPciFunction, s: FunctionState): void {
  const bad = (why: string): never => {
    throw new VirtioPciError('InvalidState', `${f.id}: saved state refused: ${why}`, { id: f.id });
  };
  const t = f.transport;
  if (s.deviceType !== f.device.deviceType) bad(`it is for device type ${s.deviceType}, not ${f.device.deviceType}`);
  if (s.config.length !== f.configSize)
    bad(`its configuration space has ${s.config.length} bytes, not ${f.configSize}`);
  for (const [off, len] of IDENTITY) {
    for (let i = off; i < off + len; i++)
      if (s.config[i] !== f.config.get(i, 1)) bad(`its PCI identity differs at configuration byte 0x${i.toString(16)}`);
  }
  if (s.msixTable.length !== f.msix.vectors * MSIX_ENTRY_SIZE)
    bad(`its MSI-X table has ${s.msixTable.length / MSIX_ENTRY_SIZE} entries, not ${f.msix.vectors}`);
  if (s.queues.length !== t.queues.length) bad(`it has ${s.queues.length} queues, the device ${t.queues.length}`);
  if (s.queueVectors.length !== t.queues.length) bad(`it has ${s.queueVectors.length} queue vectors`);
  const vectorOk = (v: number): boolean => v === VIRTIO_MSI_NO_VECTOR || v < f.msix.vectors;
  if (!vectorOk(s.msixConfig) || !s.queueVectors.every(vectorOk)) bad('a vector lies outside the MSI-X table');
  if (s.msixPending?.some((v) => v >= f.msix.vectors)) bad('a pending vector lies outside the MSI-X table');
  if (s.status & DeviceStatus.FEATURES_OK) {
    if ((s.driverFeatures & ~f.device.deviceFeatures) !== 0n) bad('it accepts features the device does not offer');
    if ((s.driverFeatures & VIRTIO_F_VERSION_1) === 0n) bad('it lacks VIRTIO_F_VERSION_1');
  }
  if (s.activated && !(s.status & DeviceStatus.DRIVER_OK)) bad('it is activated without DRIVER_OK');
  if (!s.activated && s.queues.some((q) => q.active)) bad('a queue is active on an inactive device');
  t.queues.forEach((q, i) => checkQueueState(q, s.queues[i]!));
  if (isSnapshottable(f.device)) {
    if (s.device === null) bad(`it lacks the state of device '${f.device.id}'`);
    readSnapshot(f.device, s.device);
  } else if (s.device !== null) bad(`it holds device state, but device '${f.device.id}' keeps none`);
}

/**
 * Loads a checked state: configuration space and MSI-X table, the queues' layout, the device model's
 * state, the virtio registers, then re-activates the device when it was active (which validates the
 * rings against guest memory). The bus re-reads the BARs and the command register (PciFunctionContext.configChanged):
 * windows mapped where the guest had placed them, with the decode it had turned on.
 */
export function loadFunction(f: VirtioPciFunction, s: FunctionState): void {
  const t = f.transport;
  t.session.stop();
  for (let i = 0; i < f.configSize; i++) f.config.set(i, 1, s.config[i]!);
  f.context?.configChanged?.(); // the bus maps the BARs where the guest had them, decode as it was
  f.msix.writeTable(0n, s.msixTable);
  for (const v of s.msixPending ?? []) f.msix.trigger(v); // pending again while masked (delivered at unmask)
  const progress = t.queues.map((q, i) => loadQueueState(q, s.queues[i]!));
  if (isSnapshottable(f.device) && s.device) restoreSnapshot(f.device, s.device);
  t.session.loadNegotiation({ status: s.status, driverFeatures: s.driverFeatures });
  t.deviceFeatureSelect = s.deviceFeatureSelect;
  t.driverFeatureSelect = s.driverFeatureSelect;
  t.queueSelect = s.queueSelect;
  t.msixConfig = s.msixConfig;
  t.queueVectors.splice(0, t.queueVectors.length, ...s.queueVectors);
  t.isr = s.isr;
  t.configGeneration = s.configGeneration;
  f.setIntx(s.isr !== 0 && !f.msix.enabled);
  if (s.activated) t.session.activate(progress);
}
