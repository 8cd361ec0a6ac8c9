import type { Disposable } from '../../core/bus/bus.js';
import { GuestAddress } from '../../core/address.js';
import type { EventFd, EventFdFactory, EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  type VirtioActivation,
  type VirtioDevice,
  type VirtQueue,
} from '../../core/virtio/virtio.js';
import { CallRelay } from './call-relay.js';
import type { ShadowRingsMode } from './config.js';
import { VhostUserError } from './errors.js';
import type { VhostUserFrontend, VringSetup } from './frontend.js';
import { sharedRegions } from './memory.js';
import { ProtocolFeature } from './protocol.js';
import { ShadowQueue, ShadowRings } from './shadow.js';

/**
 * Virtio feature bits a vhost-user device may pass from its back end to the driver: the device-specific
 * bits 0-23 the device plugin allows, plus VERSION_1, INDIRECT_DESC and EVENT_IDX (the transports serve
 * split rings only: no PACKED, no IN_ORDER, no ACCESS_PLATFORM, no NOTIFICATION_DATA).
 */
export const VHOST_TRANSPORT_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC | VIRTIO_F_RING_EVENT_IDX;

/** What a vhost-user device is: its identity, queues, the back end's features it may offer, its config. */
export interface VhostUserDeviceOptions {
  readonly id: string;
  readonly deviceType: number;
  readonly queueMaxSizes: readonly number[];
  /** Device-specific feature bits (0-23) the plugin lets through from the back end. */
  readonly allowedDeviceFeatures: bigint;
  /** The config space the driver reads (from GET_CONFIG, or built by the plugin); writes are ignored. */
  readonly config: Uint8Array;
  /**
   * For a back end that cannot track in-flight requests (no INFLIGHT_SHMFD): `auto` (the default) gives it shadow
   * rings (shadow.ts), so a restart loses and repeats nothing, at the cost of one pass through this process's event
   * loop per kick and per completion; `off` gives it the guest's rings, the transport's ioeventfds and irqfds, so
   * the VMM is off the data path, and a restarted back end resumes at the used index in guest memory.
   */
  readonly shadowRings?: ShadowRingsMode;
}

/**
 * A virtio device whose queues a vhost-user back end serves. The transport (mmio, pci) keeps its registers,
 * status and feature negotiation; the features offered are the back end's, narrowed to what the plugin and
 * the transport support. At DRIVER_OK the front end gives the back end guest RAM, the rings and the
 * transport's ioeventfds as kick fds; the call fds are the transport's irqfds where it offers them
 * (`callEvents`), else eventfds of this device that it turns into interrupt.signalUsedQueue (virtio-mmio,
 * whose InterruptStatus register must be set before the line fires). A driver reset stops the rings.
 */
export class VhostUserDevice implements VirtioDevice {
  readonly deviceFeatures: bigint;
  readonly configSize: number;
  private readonly relay: CallRelay;
  private watches: Disposable[] = [];
  private shadowRings: ShadowRings | undefined;
  private shadows: ShadowQueue[] = [];
  private epoch = 0;
  private needsReset: ((why: string) => void) | undefined;
  private activations = 0;
  private callInterrupts = 0;

  constructor(
    private readonly opts: VhostUserDeviceOptions,
    readonly frontend: VhostUserFrontend,
    private readonly loop: EventLoop,
    private readonly eventFds: EventFdFactory,
    private readonly logger?: Logger,
  ) {
    this.relay = new CallRelay(loop, eventFds);
    const offered = frontend.backend.features;
    this.deviceFeatures = offered & (VHOST_TRANSPORT_FEATURES | (opts.allowedDeviceFeatures & 0xff_ffffn));
    if (!(this.deviceFeatures & VIRTIO_F_VERSION_1))
      throw new VhostUserError('Unsupported', `${opts.id}: the back end does not offer VIRTIO_F_VERSION_1`, {
        features: offered,
      });
    this.configSize = opts.config.length;
  }

  get id(): string {
    return this.opts.id;
  }
  get deviceType(): number {
    return this.opts.deviceType;
  }
  get queueMaxSizes(): readonly number[] {
    return this.opts.queueMaxSizes;
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    const cfg = this.opts.config;
    if (offset < 0 || offset >= cfg.length) return;
    data.set(cfg.subarray(offset, Math.min(offset + data.length, cfg.length)));
  }

  /** The config space is read-only here (no SET_CONFIG): writes are ignored. */
  writeConfig(_offset: number, _data: Uint8Array): void {}

  activate(a: VirtioActivation): void {
    this.stopLocal();
    const epoch = ++this.epoch;
    this.activations++;
    this.needsReset = (why) => {
      if (this.epoch === epoch) a.needsReset(why);
    };
    try {
      // A back end that cannot track in-flight requests gets shadow rings (unless the plugin said off), so a
      // restart loses nothing
      const shadowed =
        this.opts.shadowRings !== 'off' && !(this.frontend.backend.protocolFeatures & ProtocolFeature.INFLIGHT_SHMFD);
      const regions = sharedRegions(a.memory);
      if (shadowed) {
        this.shadowRings = new ShadowRings(
          a.memory,
          a.queues.map((q) => q.size),
        );
        regions.push(this.shadowRings.region);
      }
      const queues: VringSetup[] = [];
      a.queues.forEach((q, i) => {
        if (!q.ready) return;
        const kick = a.queueEvents[i];
        if (!kick) throw new VhostUserError('Config', `${this.id}: queue ${i} has no notification eventfd`, {});
        const desc = need(q, 'descTable', i);
        if (this.shadowRings) {
          const sq = this.shadow(a, i, kick);
          const r = this.shadowRings.rings(i);
          queues.push({
            index: i,
            size: q.size,
            desc,
            avail: r.avail,
            used: r.used,
            kickFd: sq.kick.fd,
            ...{
              callFd: sq.call.fd,
              base: () => sq.restart(),
            },
          });
          return;
        }
        queues.push({
          index: i,
          size: q.size,
          desc,
          avail: need(q, 'availRing', i),
          used: need(q, 'usedRing', i),
          kickFd: kick.fd,
          callFd: this.relay.fd(a, i),
          base: () => usedIndex(a.memory, need(q, 'usedRing', i)),
        });
      });
      const start = this.frontend.start({
        // EVENT_IDX stays between the driver and our shadow rings: the back end calls us for every completion
        features: this.shadowRings ? a.features & ~VIRTIO_F_RING_EVENT_IDX : a.features,
        regions,
        queues,
        numQueues: this.queueMaxSizes.length,
        maxQueueSize: Math.max(...this.queueMaxSizes),
      });
      start.catch((err: unknown) => {
        if (this.epoch !== epoch) return;
        if (err instanceof VhostUserError && err.kind === 'Disconnected') return; // resumed on reconnect
        a.needsReset(`vhost-user set-up failed: ${(err as Error)?.message ?? String(err)}`);
      });
    } catch (err) {
      a.needsReset(`vhost-user set-up failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  /** Shadow queue `i`: takes the guest's kicks, relays the back end's calls as the guest's interrupts. */
  private shadow(a: VirtioActivation, i: number, kick: EventFd): ShadowQueue {
    const sq = new ShadowQueue({
      rings: this.shadowRings!,
      index: i,
      guest: a.queues[i],
      eventFds: this.eventFds,
      signal: () => {
        this.callInterrupts++;
        a.interrupt.signalUsedQueue(i);
      },
      needsReset: (why) => this.needsReset?.(why),
      logger: this.logger,
    });
    this.shadows.push(sq);
    this.watches.push(
      this.loop.watch(kick.fd, { readable: true }, () => {
        if (kick.read() !== 0n) sq.onGuestKick();
      }),
      this.loop.watch(sq.call.fd, { readable: true }, () => {
        if (sq.call.read() !== 0n) sq.onBackendCall();
      }),
    );
    return sq;
  }

  /**
   * Counters (contract C4): activations by the driver, interrupts relayed from the back end's call eventfds
   * (those that go straight to an irqfd are not seen here), reconnects to a restarted back end.
   */
  counters(): Record<string, number> {
    return {
      activations: this.activations,
      callInterrupts: this.callInterrupts + this.relay.relayed,
      reconnects: this.frontend.reconnects,
    };
  }

  /** The back end came back but cannot resume (features shrank, set-up refused): the driver must reset. */
  backendFailed(why: string): void {
    this.needsReset?.(why);
  }

  reset(): void {
    this.epoch++;
    this.needsReset = undefined;
    this.frontend.stop();
    this.stopLocal();
  }

  private stopLocal(): void {
    for (const w of this.watches) w.dispose();
    this.watches = [];
    this.relay.stop();
    for (const sq of this.shadows) sq.close();
    this.shadows = [];
    this.shadowRings?.close();
    this.shadowRings = undefined;
  }

  /** Stops the rings, closes the call eventfds and the connection. */
  destroy(): void {
    this.reset();
    this.frontend.dispose();
    this.logger?.debug({ device: this.id }, 'vhost-user device destroyed');
  }
}

function need<K extends 'descTable' | 'availRing' | 'usedRing'>(
  q: VirtQueue,
  key: K,
  i: number,
): NonNullable<VirtQueue[K]> {
  const v = q[key];
  if (v === undefined)
    throw new VhostUserError('Config', `queue ${i}: the transport does not expose its ${key} (needed by vhost-user)`, {
      key,
    });
  return v as NonNullable<VirtQueue[K]>;
}

/** used->idx of a ring in guest memory: where a (re)started back end resumes. */
function usedIndex(memory: GuestMemory, usedRing: bigint): number {
  return memory.readU16(GuestAddress.of(usedRing + 2n));
}
