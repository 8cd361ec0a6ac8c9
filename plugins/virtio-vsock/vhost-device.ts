import type { EventFdFactory, EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { ERRNO } from '../../core/native/libc.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VirtioDeviceType,
  type VirtioActivation,
  type VirtioDevice,
} from '../../core/virtio/virtio.js';
import { CallRelay } from '../vhost-user/call-relay.js';
import { VhostUserError } from '../vhost-user/errors.js';
import { VhostIoctl, VhostKernel, type KernelMemRegion } from '../vhost-user/kernel.js';
import { Queue, readVsockConfig, VSOCK_CONFIG_SIZE } from './constants.js';
import { VirtioVsockError } from './errors.js';

/** Features the kernel's vhost-vsock may pass to the driver (split rings; no SEQPACKET, no ACCESS_PLATFORM). */
const PASSED = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX | VIRTIO_F_RING_INDIRECT_DESC;

/** What a VhostVsock is built with. */
export interface VhostVsockOptions {
  readonly id: string;
  /** The guest's context id: host processes reach the guest at it with AF_VSOCK sockets. */
  readonly guestCid: bigint;
  /** The kernel device (default /dev/vhost-vsock). */
  readonly devicePath: string;
  readonly queueSize: number;
}

/**
 * virtio-vsock served by the host kernel (vhost_vsock): the guest's streams end in AF_VSOCK sockets of the host
 * (a host process listens on port P and the guest connects to CID 2 port P; a host process connects to the
 * guest's CID), as QEMU's vhost-vsock device does. The kernel serves the RX and TX queues from guest RAM in
 * this process, woken by the transport's ioeventfds, raising interrupts through the call eventfds (CallRelay).
 * The event queue stays here and carries nothing (no snapshot, so no TRANSPORT_RESET to send). The guest CID
 * is claimed when the device is made: a CID another VM holds is refused then.
 */
export class VhostVsock implements VirtioDevice {
  readonly deviceType = VirtioDeviceType.vsock;
  readonly queueMaxSizes: readonly number[];
  readonly deviceFeatures: bigint;
  readonly configSize = VSOCK_CONFIG_SIZE;
  private readonly kernel: VhostKernel;
  private readonly calls: CallRelay;
  private running = false;
  private activations = 0;

  constructor(
    private readonly opts: VhostVsockOptions,
    loop: EventLoop,
    eventFds: EventFdFactory,
    private readonly logger?: Logger,
  ) {
    if (opts.guestCid < 3n || opts.guestCid > 0xffff_fffen)
      throw new VirtioVsockError('Config', `${opts.id}: guest CID ${opts.guestCid} must be in 3..4294967294`, {});
    this.queueMaxSizes = [opts.queueSize, opts.queueSize, opts.queueSize];
    this.calls = new CallRelay(loop, eventFds);
    this.kernel = VhostKernel.open(opts.devicePath);
    try {
      this.deviceFeatures = this.kernel.features() & PASSED;
      if (!(this.deviceFeatures & VIRTIO_F_VERSION_1))
        throw new VirtioVsockError('Config', `${opts.id}: ${opts.devicePath} does not offer VIRTIO_F_VERSION_1`, {});
      this.kernel.setValue('VSOCK_SET_GUEST_CID', VhostIoctl.VSOCK_SET_GUEST_CID, opts.guestCid, 8);
    } catch (err) {
      this.kernel.close();
      if (err instanceof VhostUserError && err.data.errno === ERRNO.EADDRINUSE)
        throw new VirtioVsockError('Config', `${opts.id}: guest CID ${opts.guestCid} is in use by another VM`, {});
      throw err;
    }
  }

  get id(): string {
    return this.opts.id;
  }

  readConfig(offset: number, data: Uint8Array): void {
    readVsockConfig(this.opts.guestCid, offset, data);
  }

  /** guest_cid is the device's: writes are ignored. */
  writeConfig(_offset: number, _data: Uint8Array): void {}

  /** DRIVER_OK: the kernel gets the features, guest RAM and the RX/TX rings, then starts. */
  activate(a: VirtioActivation): void {
    this.stop();
    this.activations++;
    try {
      this.kernel.setFeatures(a.features);
      this.kernel.setMemTable(kernelRegions(a.memory));
      for (const i of [Queue.rx, Queue.tx]) {
        const q = a.queues[i];
        const kick = a.queueEvents[i];
        if (!q?.ready || q.descTable === undefined || q.availRing === undefined || q.usedRing === undefined || !kick)
          throw new VirtioVsockError(
            'Config',
            `${this.id}: queue ${i} is not ready or has no notification eventfd`,
            {},
          );
        const host = (gpa: bigint): bigint => hostAddress(a.memory, gpa);
        this.kernel.setVring({
          index: i,
          size: q.size,
          desc: host(q.descTable),
          avail: host(q.availRing),
          used: host(q.usedRing),
          base: 0,
          kickFd: kick.fd,
          callFd: this.calls.fd(a, i),
        });
      }
      this.kernel.setValue('VSOCK_SET_RUNNING', VhostIoctl.VSOCK_SET_RUNNING, 1n, 4);
      this.running = true;
    } catch (err) {
      a.needsReset(`vhost-vsock set-up failed: ${(err as Error).message}`);
    }
  }

  /** Counters (C4): activations, interrupts relayed from the kernel's call eventfds. */
  counters(): Record<string, number> {
    return { activations: this.activations, callInterrupts: this.calls.relayed };
  }

  /** The driver reset the device: the kernel stops the rings; a later activation starts afresh. */
  reset(): void {
    this.stop();
  }

  private stop(): void {
    if (this.running) {
      try {
        this.kernel.setValue('VSOCK_SET_RUNNING', VhostIoctl.VSOCK_SET_RUNNING, 0n, 4);
        for (const i of [Queue.rx, Queue.tx]) this.kernel.stopVring(i);
      } catch (err) {
        this.logger?.warn({ err, device: this.id }, 'vhost-vsock stop failed');
      }
      this.running = false;
    }
    this.calls.stop();
  }

  /** Stops the rings and closes the kernel device (the guest CID is free again). */
  destroy(): void {
    this.stop();
    this.kernel.close();
  }
}

/** Guest RAM as the kernel reads it: every writable region by its address in this process. */
function kernelRegions(memory: GuestMemory): KernelMemRegion[] {
  return memory.regions
    .filter((r) => !r.readOnly)
    .map((r) => {
      if (r.hostAddress === 0n)
        throw new VirtioVsockError(
          'Config',
          'vhost-vsock needs guest RAM mapped in this process (not heap memory)',
          {},
        );
      return { guestPhysAddr: r.range.start.value, size: r.range.length, userAddr: r.hostAddress };
    });
}

/** The address in this process of guest-physical `gpa` (a ring inside one region). */
function hostAddress(memory: GuestMemory, gpa: bigint): bigint {
  for (const r of memory.regions)
    if (gpa >= r.range.start.value && gpa < r.range.start.value + r.range.length)
      return r.hostAddress + (gpa - r.range.start.value);
  throw new VirtioVsockError('Config', `ring address 0x${gpa.toString(16)} is outside guest RAM`, {});
}
