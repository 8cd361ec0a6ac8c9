import { VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { DeviceStatus } from './constants.js';

/** What a status write asks the transport to do. */
export type StatusOutcome =
  /** The driver wrote 0: reset the device and every queue. */
  | { action: 'reset' }
  /** DRIVER_OK was set with valid features: validate queues and activate the device. */
  | { action: 'activate' }
  /** Bits were recorded; nothing else to do. */
  | { action: 'none' }
  /** The write broke the state machine and was ignored (reason for logs/metrics). */
  | { action: 'ignored'; reason: string };

const DRIVER_SETTABLE =
  DeviceStatus.ACKNOWLEDGE |
  DeviceStatus.DRIVER |
  DeviceStatus.FEATURES_OK |
  DeviceStatus.DRIVER_OK |
  DeviceStatus.FAILED;

/**
 * Device status and feature negotiation (virtio 1.2 §2.1, §2.2, §3.1), shared by
 * every transport. The driver walks ACKNOWLEDGE -> DRIVER -> FEATURES_OK ->
 * DRIVER_OK, only ever adding bits; writing 0 resets. FEATURES_OK is refused
 * (stays clear, which the driver reads back) unless the driver accepted
 * VIRTIO_F_VERSION_1 and nothing the device did not offer. Out-of-order or
 * bit-clearing writes are ignored (Firecracker does the same) and reported.
 */
export class DeviceNegotiation {
  private statusBits = 0;
  private driverFeatureBits = 0n;

  constructor(readonly deviceFeatures: bigint) {}

  get status(): number {
    return this.statusBits;
  }
  get driverFeatures(): bigint {
    return this.driverFeatureBits;
  }

  has(bit: number): boolean {
    return (this.statusBits & bit) !== 0;
  }

  /** Whether the driver may still write feature bits (DRIVER set, FEATURES_OK not yet, not failed). */
  get featuresWritable(): boolean {
    return this.has(DeviceStatus.DRIVER) && !this.has(DeviceStatus.FEATURES_OK) && !this.has(DeviceStatus.FAILED);
  }

  /** Whether queue registers may be written (FEATURES_OK, not yet DRIVER_OK, no failure). */
  get queuesConfigurable(): boolean {
    return (
      this.has(DeviceStatus.FEATURES_OK) &&
      !this.has(DeviceStatus.DRIVER_OK) &&
      !this.has(DeviceStatus.FAILED) &&
      !this.has(DeviceStatus.DEVICE_NEEDS_RESET)
    );
  }

  /** 32 bits of the offered features; selectors above 1 read 0. */
  deviceFeatureWord(select: number): number {
    return select === 0 || select === 1 ? Number((this.deviceFeatures >> BigInt(32 * select)) & 0xffff_ffffn) : 0;
  }

  driverFeatureWord(select: number): number {
    return select === 0 || select === 1 ? Number((this.driverFeatureBits >> BigInt(32 * select)) & 0xffff_ffffn) : 0;
  }

  /** Records 32 bits the driver accepts; ignored (false) outside the feature phase or for selectors above 1. */
  setDriverFeatureWord(select: number, value: number): boolean {
    if (!this.featuresWritable || (select !== 0 && select !== 1)) return false;
    const shift = BigInt(32 * select);
    const mask = 0xffff_ffffn << shift;
    this.driverFeatureBits = (this.driverFeatureBits & ~mask) | ((BigInt(value >>> 0) << shift) & mask);
    return true;
  }

  /** Why the accepted features cannot be taken, or undefined when they can. */
  featureProblem(): string | undefined {
    const extra = this.driverFeatureBits & ~this.deviceFeatures;
    if (extra !== 0n) return `driver accepted features 0x${extra.toString(16)} the device did not offer`;
    if ((this.driverFeatureBits & VIRTIO_F_VERSION_1) === 0n)
      return 'driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported)';
    return undefined;
  }

  writeStatus(value: number): StatusOutcome {
    value = value & 0xff;
    if (value === 0) {
      this.statusBits = 0;
      this.driverFeatureBits = 0n;
      return { action: 'reset' };
    }
    const old = this.statusBits;
    const keep = old & DeviceStatus.DEVICE_NEEDS_RESET;
    const requested = value & DRIVER_SETTABLE;
    if ((old & DRIVER_SETTABLE & ~requested) !== 0)
      return { action: 'ignored', reason: `status 0x${value.toString(16)} clears bits of 0x${old.toString(16)}` };
    const added = requested & ~old;
    if (added === 0) return { action: 'none' };
    if (added & DeviceStatus.FAILED) {
      this.statusBits = old | DeviceStatus.FAILED;
      return { action: 'none' };
    }
    const next = requested;
    const order: [number, number][] = [
      [DeviceStatus.DRIVER, DeviceStatus.ACKNOWLEDGE],
      [DeviceStatus.FEATURES_OK, DeviceStatus.DRIVER],
      [DeviceStatus.DRIVER_OK, DeviceStatus.FEATURES_OK],
    ];
    for (const [bit, prerequisite] of order) {
      if (next & bit && !(next & prerequisite)) {
        return {
          action: 'ignored',
          reason: `status 0x${value.toString(16)} sets bit 0x${bit.toString(16)} without 0x${prerequisite.toString(16)}`,
        };
      }
    }
    if (added & DeviceStatus.FEATURES_OK) {
      const problem = this.featureProblem();
      if (problem) {
        // Leave FEATURES_OK clear: the driver reads the status back and gives up.
        this.statusBits = keep | (next & ~(DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK));
        return { action: 'ignored', reason: problem };
      }
    }
    if (added & DeviceStatus.DRIVER_OK && old & DeviceStatus.DEVICE_NEEDS_RESET) {
      return { action: 'ignored', reason: 'DRIVER_OK while the device needs a reset' };
    }
    this.statusBits = keep | next;
    return added & DeviceStatus.DRIVER_OK ? { action: 'activate' } : { action: 'none' };
  }

  /** The device hit an error the driver must recover from by resetting (sets DEVICE_NEEDS_RESET). */
  markNeedsReset(): void {
    this.statusBits |= DeviceStatus.DEVICE_NEEDS_RESET;
  }

  /** Clears DRIVER_OK's effect when activation failed, keeping the other bits. */
  setStatusBits(bits: number): void {
    this.statusBits = bits & 0xff;
  }

  /** For snapshots. */
  save(): { status: number; driverFeatures: bigint } {
    return { status: this.statusBits, driverFeatures: this.driverFeatureBits };
  }
  load(s: { status: number; driverFeatures: bigint }): void {
    this.statusBits = s.status & 0xff;
    this.driverFeatureBits = s.driverFeatures;
  }
}
