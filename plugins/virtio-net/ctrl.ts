import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { DescriptorChain, VirtQueue, VirtioInterrupt } from '../../core/virtio/virtio.js';
import { ChainReader, ChainWriter } from '../virtio/chain-io.js';
import { drainQueue } from '../virtio/queue-runner.js';
import { Ctrl, GUEST_OFFLOAD_MASK, MAX_MAC_TABLE_ENTRIES, NetFeature } from './constants.js';
import type { NetCtrlMetrics } from './metrics.js';

/** RX filtering modes the driver sets with VIRTIO_NET_CTRL_RX (recorded; see NetControl). */
export interface RxMode {
  promisc: boolean;
  allmulti: boolean;
  alluni: boolean;
  nomulti: boolean;
  nouni: boolean;
  nobcast: boolean;
}
/** The RX mode recorded until the driver sets one: promiscuous and all-multicast, as the virtio spec starts. */
export const defaultRxMode = (): RxMode => ({
  promisc: true,
  allmulti: true,
  alluni: false,
  nomulti: false,
  nouni: false,
  nobcast: false,
});

/** What control commands change on the device. */
export interface NetControl {
  readonly features: bigint;
  readonly maxQueuePairs: number;
  rxMode: RxMode;
  macTable: { unicast: Uint8Array[]; multicast: Uint8Array[] };
  setMac(mac: Uint8Array): void;
  ackAnnounce(): void;
  setQueuePairs(n: number): void;
  setGuestOffloads(bits: bigint): void;
}

/** Largest command payload accepted (a full MAC table set and a little slack). */
const MAX_COMMAND_BYTES = 2 * (4 + 6 * MAX_MAC_TABLE_ENTRIES) + 64;

const RX_CMDS: Record<number, keyof RxMode> = {
  [Ctrl.RX_PROMISC]: 'promisc',
  [Ctrl.RX_ALLMULTI]: 'allmulti',
  [Ctrl.RX_ALLUNI]: 'alluni',
  [Ctrl.RX_NOMULTI]: 'nomulti',
  [Ctrl.RX_NOUNI]: 'nouni',
  [Ctrl.RX_NOBCAST]: 'nobcast',
};

/**
 * Executes one control command (virtio 1.2 §5.1.6.5) and returns the ack byte.
 * Commands whose feature was not negotiated, unknown commands and malformed data
 * get VIRTIO_NET_ERR and change nothing.
 */
export function executeCtrl(dev: NetControl, cls: number, cmd: number, data: Uint8Array): number {
  const has = (f: bigint): boolean => (dev.features & f) !== 0n;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  switch (cls) {
    case Ctrl.RX: {
      const key = RX_CMDS[cmd];
      if (!has(NetFeature.CTRL_RX) || !key || data.length !== 1) return Ctrl.ERR;
      dev.rxMode = { ...dev.rxMode, [key]: data[0] !== 0 };
      return Ctrl.OK;
    }
    case Ctrl.MAC: {
      if (cmd === Ctrl.MAC_ADDR_SET) {
        if (!has(NetFeature.CTRL_MAC_ADDR) || data.length !== 6) return Ctrl.ERR;
        dev.setMac(data.slice());
        return Ctrl.OK;
      }
      if (cmd === Ctrl.MAC_TABLE_SET) {
        if (!has(NetFeature.CTRL_RX)) return Ctrl.ERR;
        const tables: Uint8Array[][] = [];
        let off = 0;
        for (let t = 0; t < 2; t++) {
          if (off + 4 > data.length) return Ctrl.ERR;
          const n = dv.getUint32(off, true);
          off += 4;
          if (n > MAX_MAC_TABLE_ENTRIES || off + 6 * n > data.length) return Ctrl.ERR;
          tables.push(Array.from({ length: n }, (_, i) => data.slice(off + 6 * i, off + 6 * i + 6)));
          off += 6 * n;
        }
        if (off !== data.length) return Ctrl.ERR;
        dev.macTable = { unicast: tables[0], multicast: tables[1] };
        return Ctrl.OK;
      }
      return Ctrl.ERR;
    }
    case Ctrl.ANNOUNCE:
      if (!has(NetFeature.GUEST_ANNOUNCE) || cmd !== Ctrl.ANNOUNCE_ACK) return Ctrl.ERR;
      dev.ackAnnounce();
      return Ctrl.OK;
    case Ctrl.MQ: {
      if (!has(NetFeature.MQ) || cmd !== Ctrl.MQ_VQ_PAIRS_SET || data.length !== 2) return Ctrl.ERR;
      const n = dv.getUint16(0, true);
      if (n < 1 || n > dev.maxQueuePairs) return Ctrl.ERR;
      dev.setQueuePairs(n);
      return Ctrl.OK;
    }
    case Ctrl.GUEST_OFFLOADS: {
      if (!has(NetFeature.CTRL_GUEST_OFFLOADS) || cmd !== Ctrl.GUEST_OFFLOADS_SET || data.length !== 8) return Ctrl.ERR;
      const bits = dv.getBigUint64(0, true);
      // Only guest offloads, and only ones negotiated, may be switched on.
      if ((bits & ~GUEST_OFFLOAD_MASK) !== 0n || (bits & ~dev.features) !== 0n) return Ctrl.ERR;
      dev.setGuestOffloads(bits);
      return Ctrl.OK;
    }
    default:
      return Ctrl.ERR;
  }
}

/**
 * Serves the control queue: each chain is class u8, command u8, data (device-readable),
 * then an ack byte (device-writable). A chain without room for the ack is returned
 * with length 0; malformed commands are answered VIRTIO_NET_ERR. Never fatal except
 * for a broken ring (VirtQueueError, passed to needsReset).
 */
export class CtrlHandler {
  private stopped = false;
  constructor(
    private readonly d: {
      queue: VirtQueue;
      memory: GuestMemory;
      interrupt: VirtioInterrupt;
      control: NetControl;
      metrics: NetCtrlMetrics;
      needsReset: (reason: string) => void;
    },
  ) {}

  process(): void {
    if (this.stopped) return;
    try {
      drainQueue(this.d.queue, (chain) => this.handle(chain), this.d.interrupt);
    } catch (err) {
      this.stopped = true;
      this.d.needsReset(`control queue: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private handle(chain: DescriptorChain): number {
    const m = this.d.metrics;
    m.commands++;
    let ack: number = Ctrl.ERR;
    if (chain.readableLength >= 2 && chain.readableLength <= MAX_COMMAND_BYTES + 2) {
      const r = new ChainReader(this.d.memory, chain);
      const cls = r.readU8();
      const cmd = r.readU8();
      ack = executeCtrl(this.d.control, cls, cmd, r.read(r.remaining));
    }
    if (ack !== Ctrl.OK) m.errors++;
    if (chain.writableLength < 1) return 0;
    new ChainWriter(this.d.memory, chain).writeU8(ack);
    return 1;
  }

  stop(): void {
    this.stopped = true;
  }
}
