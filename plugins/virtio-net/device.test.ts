import { expect } from 'chai';
import sinon from 'sinon';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { FakeEventSystem } from '../virtio/testing.js';
import { NetBackendError } from './backends/errors.js';
import { NetConfigLayout, NET_CONFIG_SIZE, formatMac } from './config-space.js';
import {
  Ctrl,
  GUEST_OFFLOAD_MASK,
  MAX_FRAME_WITH_HDR,
  NetFeature as F,
  NetStatus,
  QUEUE_BUDGET,
  VNET_HDR_F_NEEDS_CSUM,
  VNET_HDR_GSO_TCPV4,
  VNET_HDR_SIZE,
} from './constants.js';
import { VirtioNet, type VirtioNetOptions } from './device.js';
import { decodeHeader } from './header.js';
import {
  MemoryNetBackend,
  activateNet,
  ethernet,
  inetChecksum,
  ipv4,
  ipv4Packet,
  withHeader,
  type ActivatedNet,
} from './testing.js';

const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
const PEER = Uint8Array.of(0x02, 0, 0, 0, 0, 1);
const BASE_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX | VIRTIO_F_RING_INDIRECT_DESC;

/** An Ethernet frame of `len` bytes with a recognisable payload. */
function frame(len: number, seed = 1): Uint8Array {
  const payload = new Uint8Array(len - 14);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + seed) & 0xff;
  return ethernet(MAC, PEER, 0x0800, payload);
}

function cfg(dev: VirtioNet): DataView {
  const b = new Uint8Array(NET_CONFIG_SIZE);
  dev.readConfig(0, b);
  return new DataView(b.buffer);
}

describe('plugins/virtio-net VirtioNet', () => {
  let events: FakeEventSystem;
  let backend: MemoryNetBackend;
  beforeEach(() => {
    events = new FakeEventSystem();
    backend = new MemoryNetBackend(events.loop);
  });

  function make(o: Partial<VirtioNetOptions> = {}, b = backend): VirtioNet {
    return new VirtioNet({ id: 'net0', backend: b, mac: MAC, defer: () => {}, ...o }, events.loop);
  }
  /** Marks the backend readable and runs the loop. */
  const pump = (h: ActivatedNet): void => {
    backend.fds.forEach((fd) => events.loop.readable.add(fd));
    h.run();
  };

  describe('features and config space', () => {
    it('lays out mac, status, max pairs and mtu per virtio 1.2 §5.1.4 and offers the tap offloads', () => {
      const dev = make({ mtu: 9000 });
      expect(dev.deviceType).to.equal(1);
      const f = dev.deviceFeatures;
      for (const bit of [
        VIRTIO_F_VERSION_1,
        F.MAC,
        F.STATUS,
        F.MRG_RXBUF,
        F.CTRL_VQ,
        F.CTRL_RX,
        F.MTU,
        F.CSUM,
        F.GUEST_CSUM,
        F.HOST_TSO4,
        F.HOST_TSO6,
        F.GUEST_TSO4,
        F.GUEST_TSO6,
        F.HOST_UFO,
        F.CTRL_GUEST_OFFLOADS,
      ]) {
        expect(f & bit, `bit ${bit.toString(2).length - 1}`).to.equal(bit);
      }
      expect(f & F.GUEST_UFO).to.equal(0n); // the double's "tap" cannot deliver UFO
      expect(f & F.MQ).to.equal(0n);
      const c = cfg(dev);
      expect(formatMac(new Uint8Array(c.buffer, 0, 6))).to.equal('52:54:00:12:34:56');
      expect(c.getUint16(NetConfigLayout.status, true)).to.equal(NetStatus.LINK_UP);
      expect(c.getUint16(NetConfigLayout.maxVirtqueuePairs, true)).to.equal(1);
      expect(c.getUint16(NetConfigLayout.mtu, true)).to.equal(9000);
      expect(dev.queueMaxSizes).to.deep.equal([256, 256, 64]);
    });

    it('offers no offloads with a headerless backend, MQ with several pairs, and rejects bad options', () => {
      const plain = make({}, new MemoryNetBackend(events.loop, { vnetHeader: false }));
      expect(
        plain.deviceFeatures & (F.CSUM | F.GUEST_CSUM | F.HOST_TSO4 | F.GUEST_TSO4 | F.CTRL_GUEST_OFFLOADS),
      ).to.equal(0n);
      const mq = make({ queuePairs: 2 }, new MemoryNetBackend(events.loop, { queuePairs: 2 }));
      expect(mq.deviceFeatures & F.MQ).to.equal(F.MQ);
      expect(mq.queueMaxSizes).to.have.length(5);
      expect(cfg(mq).getUint16(NetConfigLayout.maxVirtqueuePairs, true)).to.equal(2);
      expect(() => make({ queuePairs: 2 })).to.throw(/backend has 1/);
      expect(() => make({ mac: Uint8Array.of(1, 2, 3, 4, 5, 6) })).to.throw(/unicast/);
      expect(() => make({ mtu: 10 })).to.throw(/mtu/);
      expect(() => make({ queueSize: 100 })).to.throw(/power of two/);
    });

    it('reads past the end as zeros, ignores writes, and signals link changes', () => {
      const dev = make();
      const b = new Uint8Array(4).fill(9);
      dev.readConfig(NET_CONFIG_SIZE, b);
      expect([...b]).to.deep.equal([0, 0, 0, 0]);
      dev.writeConfig(0, new Uint8Array(6).fill(1));
      expect(cfg(dev).getUint8(0)).to.equal(0x52);
      const h = activateNet(dev, events);
      dev.setLink(false);
      expect(h.configChanges).to.equal(1);
      expect(cfg(dev).getUint16(NetConfigLayout.status, true)).to.equal(0);
    });
  });

  describe('TX', () => {
    it('sends header + frame to a vnet-header backend and returns the chain with length 0', () => {
      const dev = make();
      const h = activateNet(dev, events);
      const f = frame(1000);
      const head = h.driver.sendTx(
        withHeader(f, {
          flags: VNET_HDR_F_NEEDS_CSUM,
          gsoType: VNET_HDR_GSO_TCPV4,
          hdrLen: 54,
          gsoSize: 1448,
          csumStart: 34,
          csumOffset: 16,
        }),
      );
      h.driver.sendTx(withHeader(frame(60, 2)), 0, { oneBuffer: true, indirect: true });
      h.kick(1);
      expect(backend.sent).to.have.length(2);
      const hdr = decodeHeader(backend.sent[0].frame);
      expect(hdr).to.include({
        flags: VNET_HDR_F_NEEDS_CSUM,
        gsoType: VNET_HDR_GSO_TCPV4,
        hdrLen: 54,
        gsoSize: 1448,
        csumStart: 34,
        csumOffset: 16,
        numBuffers: 0,
      });
      expect(Buffer.from(backend.sent[0].frame.subarray(VNET_HDR_SIZE)).equals(f)).to.equal(true);
      expect(h.mqs[1].readUsed()).to.deep.equal([
        { id: head, len: 0 },
        { id: head + 2, len: 0 },
      ]);
      expect(h.interrupts).to.include(1);
      expect(dev.metrics.pair(0)).to.include({ txFrames: 2, txBytes: 1060, txDropped: 0 });
    });

    it('strips the header for a headerless backend, finishing a partial checksum and dropping GSO frames', () => {
      const b = new MemoryNetBackend(events.loop, { vnetHeader: false });
      const dev = make({}, b);
      const h = activateNet(dev, events, { features: BASE_FEATURES | F.MRG_RXBUF | F.CSUM });
      // UDP over IPv4 with the checksum field holding only the pseudo-header sum (as a driver leaves it).
      const udp = new Uint8Array(8 + 20);
      udp[1] = 7;
      udp[3] = 9;
      udp[5] = udp.length;
      for (let i = 8; i < udp.length; i++) udp[i] = i;
      const ip = ipv4Packet(ipv4('10.0.0.1'), ipv4('10.0.0.2'), 17, udp);
      const eth = ethernet(PEER, MAC, 0x0800, ip);
      const pseudo = Uint8Array.of(10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, udp.length);
      const partial = ~inetChecksum(pseudo) & 0xffff;
      eth[14 + 20 + 6] = partial >> 8;
      eth[14 + 20 + 7] = partial & 0xff;
      h.driver.sendTx(withHeader(eth, { flags: VNET_HDR_F_NEEDS_CSUM, csumStart: 34, csumOffset: 6 }));
      h.driver.sendTx(withHeader(frame(200), { gsoType: VNET_HDR_GSO_TCPV4, gsoSize: 100 }));
      // hostile offsets
      h.driver.sendTx(withHeader(eth, { flags: VNET_HDR_F_NEEDS_CSUM, csumStart: 2000, csumOffset: 6 }));
      h.kick(1);
      expect(b.sent).to.have.length(1);
      const out = b.sent[0].frame;
      expect(out.length).to.equal(eth.length);
      // The receiver's check: pseudo-header + UDP segment sums to 0xffff (checksum 0 after complement).
      expect(inetChecksum(Buffer.concat([pseudo, out.subarray(34)]))).to.equal(0);
      expect(dev.metrics.pair(0)).to.include({ txFrames: 1, txDropped: 2 });
      expect(h.mqs[1].readUsed()).to.have.length(3);
    });

    it('a TX kick also delivers what the backend already holds for the guest, then raises both interrupts', () => {
      const dev = make();
      const h = activateNet(dev, events);
      h.driver.addRxBuffers(4, 2048);
      h.run();
      const answer = frame(80, 9);
      backend.inbox[0].push(withHeader(answer)); // waiting, but no readiness reported yet
      const seen: string[] = [];
      const spy = sinon.spy(backend, 'send');
      h.interrupts.length = 0;
      h.driver.sendTx(withHeader(frame(100)));
      const origPush = h.interrupts.push.bind(h.interrupts);
      h.interrupts.push = (...q: number[]) => {
        seen.push(`irq${q[0]} after ${h.driver.readRx().length ? 'rx' : 'no rx'}`);
        return origPush(...q);
      };
      h.kick(1);
      expect(spy.callCount).to.equal(1);
      expect(dev.metrics.pair(0)).to.include({ txFrames: 1, rxFrames: 1, txKicks: 1 });
      // Both used rings were written before the first interrupt: one guest interrupt can serve both.
      expect(seen[0]).to.equal('irq1 after rx');
      expect([...h.interrupts].sort()).to.deep.equal([0, 1]);
    });

    it('drops chains too short for a header or an Ethernet header, and oversized ones, and goes on', () => {
      const dev = make();
      const h = activateNet(dev, events);
      h.driver.sendTx(new Uint8Array(8), 0, { oneBuffer: true });
      h.driver.sendTx(withHeader(new Uint8Array(10)), 0, { oneBuffer: true });
      h.driver.sendTx(new Uint8Array(MAX_FRAME_WITH_HDR + 1));
      h.driver.sendTx(withHeader(frame(64)));
      h.kick(1);
      expect(backend.sent).to.have.length(1);
      expect(dev.metrics.pair(0)).to.include({ txMalformed: 3, txDropped: 3, txFrames: 1 });
      expect(h.mqs[1].readUsed().map((u) => u.len)).to.deep.equal([0, 0, 0, 0]);
      expect(h.resets).to.deep.equal([]);
    });

    it('counts backend failures and full backends, returning every chain', () => {
      const dev = make();
      const h = activateNet(dev, events);
      backend.sendError = new NetBackendError('Send', 'EIO', { errno: 5 });
      h.driver.sendTx(withHeader(frame(100)));
      h.kick(1);
      backend.sendError = undefined;
      backend.sendRoom = 0;
      h.driver.sendTx(withHeader(frame(100)));
      h.kick(1);
      expect(dev.metrics.pair(0)).to.include({ txErrors: 1, txDropped: 2, txFrames: 0 });
      expect(h.mqs[1].readUsed()).to.have.length(2);
    });

    it('a driver that breaks the ring gets NEEDS_RESET; the device stops touching the queue', () => {
      const dev = make();
      const h = activateNet(dev, events);
      h.mqs[1].setAvailIdx(1000);
      h.kick(1);
      expect(h.resets).to.have.length(1);
      expect(h.resets[0]).to.match(/TX queue 1/);
      h.mqs[1].setAvailIdx(0);
      h.driver.sendTx(withHeader(frame(100)));
      h.kick(1);
      expect(backend.sent).to.have.length(0);
      expect(events.errors).to.deep.equal([]);
    });
  });

  describe('RX', () => {
    it('spreads a frame larger than one buffer over mergeable buffers with num_buffers set', () => {
      const dev = make();
      const h = activateNet(dev, events);
      h.driver.addRxBuffers(8, 2048);
      const big = frame(5000);
      backend.inject(withHeader(big, { flags: 2 }));
      backend.inject(withHeader(frame(100, 5)));
      pump(h);
      const used = h.mqs[0].readUsed();
      expect(used.map((u) => u.len)).to.deep.equal([2048, 2048, 5012 - 4096, 112]);
      expect(dev.metrics.pair(0)).to.include({ rxFrames: 2, rxBytes: 5100 });
      expect(h.interrupts).to.include(0);
    });

    it('delivers intact frames and headers (driver view)', () => {
      const dev = make();
      const h = activateNet(dev, events);
      h.driver.addRxBuffers(8, 1526);
      const big = frame(4000);
      backend.inject(
        withHeader(big, {
          flags: VNET_HDR_F_NEEDS_CSUM,
          gsoType: VNET_HDR_GSO_TCPV4,
          gsoSize: 1448,
          hdrLen: 54,
          csumStart: 34,
          csumOffset: 16,
        }),
      );
      pump(h);
      const rx = h.driver.readRx();
      expect(rx).to.have.length(1);
      expect(rx[0].buffers).to.equal(3);
      expect(rx[0].header).to.include({
        flags: VNET_HDR_F_NEEDS_CSUM,
        gsoType: VNET_HDR_GSO_TCPV4,
        gsoSize: 1448,
        hdrLen: 54,
        csumStart: 34,
        csumOffset: 16,
        numBuffers: 3,
      });
      expect(Buffer.from(rx[0].frame).equals(big)).to.equal(true);
    });

    it('without MRG_RXBUF uses one chain per frame (num_buffers 1) and drops frames a chain cannot hold', () => {
      const dev = make();
      const h = activateNet(dev, events, { features: BASE_FEATURES | F.CTRL_VQ });
      h.driver.addRxBuffers(2, 1526);
      backend.inject(withHeader(frame(3000)));
      backend.inject(withHeader(frame(1000)));
      backend.inject(withHeader(frame(1514)));
      pump(h);
      const rx = h.driver.readRx();
      expect(rx.map((r) => [r.buffers, r.frame.length])).to.deep.equal([
        [1, 1000],
        [1, 1514],
      ]);
      expect(dev.metrics.pair(0)).to.include({ rxFrames: 2, rxDropped: 1 });
    });

    it('headerless backends get a zero header in front', () => {
      const b = new MemoryNetBackend(events.loop, { vnetHeader: false });
      const dev = make({}, b);
      const h = activateNet(dev, events);
      h.driver.addRxBuffers(2, 2048);
      const f = frame(300);
      b.inject(f);
      events.loop.readable.add(b.fds[0]);
      h.run();
      const rx = h.driver.readRx();
      expect(rx[0].header).to.deep.equal({
        flags: 0,
        gsoType: 0,
        hdrLen: 0,
        gsoSize: 0,
        csumStart: 0,
        csumOffset: 0,
        numBuffers: 1,
      });
      expect(Buffer.from(rx[0].frame).equals(f)).to.equal(true);
    });

    it('with no buffers it holds one frame, stops watching the backend, and resumes on the queue kick', () => {
      const dev = make();
      const h = activateNet(dev, events);
      for (let i = 0; i < 5; i++) backend.inject(withHeader(frame(500, i)));
      pump(h);
      expect(backend.inbox[0]).to.have.length(4); // one read and held, the rest left in the backend
      expect(events.loop.watchedFds).to.not.include(backend.fds[0]);
      expect(dev.metrics.pair(0).rxNoBuffers).to.be.greaterThan(0);
      h.driver.addRxBuffers(2, 2048);
      h.kick(0);
      expect(h.driver.readRx().map((r) => r.frame[14])).to.deep.equal([frame(500, 0)[14], frame(500, 1)[14]]);
      expect(events.loop.watchedFds).to.not.include(backend.fds[0]);
      h.driver.addRxBuffers(8, 2048);
      h.kick(0);
      expect(h.driver.readRx()).to.have.length(3);
      expect(backend.inbox[0]).to.have.length(0);
      expect(events.loop.watchedFds).to.include(backend.fds[0]); // drained: watching again
    });

    it('a frame the whole ring cannot hold is dropped instead of waiting forever', () => {
      const dev = make();
      const h = activateNet(dev, events, { queueSize: 16 });
      h.driver.addRxBuffers(16, 64);
      backend.inject(withHeader(frame(4000)));
      backend.inject(withHeader(frame(100)));
      pump(h);
      const rx = h.driver.readRx();
      expect(rx).to.have.length(1);
      expect(rx[0].frame.length).to.equal(100);
      expect(dev.metrics.pair(0).rxDropped).to.equal(1);
    });

    it('returns chains that cannot hold a header with length 0 and drops oversized or runt frames', () => {
      const dev = make();
      const h = activateNet(dev, events);
      h.mqs[0].addChain([{ addr: h.mqs[0].alloc(8), len: 8, write: true }]);
      h.mqs[0].addChain([{ addr: h.mqs[0].alloc(64), len: 64 }]); // device-readable only
      h.driver.addRxBuffers(4, 2048);
      backend.inject(new Uint8Array(MAX_FRAME_WITH_HDR + 100));
      backend.inject(new Uint8Array(VNET_HDR_SIZE + 5));
      backend.inject(withHeader(frame(60)));
      pump(h);
      const used = h.mqs[0].readUsed();
      expect(used.slice(0, 2).map((u) => u.len)).to.deep.equal([0, 0]);
      expect(used[2].len).to.equal(72);
      expect(dev.metrics.pair(0)).to.include({ rxBadChains: 2, rxDropped: 2, rxFrames: 1 });
      expect(h.resets).to.deep.equal([]);
    });

    it('backs off after a backend read error and resumes', () => {
      const dev = make();
      const h = activateNet(dev, events);
      h.driver.addRxBuffers(4, 2048);
      backend.recvError = new NetBackendError('Recv', 'EBADFD', { errno: 77 });
      backend.inject(withHeader(frame(100)));
      pump(h);
      pump(h);
      expect(dev.metrics.pair(0).rxErrors).to.equal(1); // no retry storm
      backend.recvError = undefined;
      events.loop.advance(50);
      expect(h.driver.readRx()).to.have.length(1);
    });

    it('drops frames while the link is down', () => {
      const dev = make({ linkUp: false });
      const h = activateNet(dev, events);
      h.driver.addRxBuffers(4, 2048);
      backend.inject(withHeader(frame(100)));
      pump(h);
      h.driver.sendTx(withHeader(frame(100)));
      h.kick(1);
      expect(dev.metrics.pair(0)).to.include({ rxDropped: 1, rxFrames: 0, txDropped: 1 });
      expect(backend.sent).to.have.length(0);
    });

    it('yields after a budget of frames', () => {
      const deferred: (() => void)[] = [];
      const dev = make({ queueSize: 512, defer: (cb) => deferred.push(cb) });
      const h = activateNet(dev, events, { queueSize: 512 });
      h.driver.addRxBuffers(QUEUE_BUDGET + 10, 128);
      for (let i = 0; i < QUEUE_BUDGET + 10; i++) backend.inject(withHeader(frame(60)));
      dev.processRx();
      expect(dev.metrics.pair(0).rxFrames).to.equal(QUEUE_BUDGET);
      expect(deferred).to.have.length(1);
      deferred[0]();
      expect(dev.metrics.pair(0).rxFrames).to.equal(QUEUE_BUDGET + 10);
    });
  });

  describe('control queue', () => {
    function setup(o: Partial<VirtioNetOptions> = {}, b = backend) {
      const dev = make(o, b);
      const h = activateNet(dev, events);
      const cmd = (cls: number, c: number, data?: Uint8Array, opt?: { noAck?: boolean }): number => {
        const at = h.driver.ctrl(h.ctrlQueue, cls, c, data, opt);
        h.kick(h.ctrlQueue);
        return h.driver.ack(at);
      };
      return { dev, h, cmd };
    }
    const le16 = (n: number): Uint8Array => Uint8Array.of(n & 0xff, n >> 8);

    it('acks the RX mode and MAC commands Linux sends and records them', () => {
      const { dev, cmd } = setup();
      expect(cmd(Ctrl.RX, Ctrl.RX_PROMISC, Uint8Array.of(0))).to.equal(Ctrl.OK);
      expect(cmd(Ctrl.RX, Ctrl.RX_ALLMULTI, Uint8Array.of(1))).to.equal(Ctrl.OK);
      expect(dev.rxMode).to.include({ promisc: false, allmulti: true });
      expect(cmd(Ctrl.RX, Ctrl.RX_PROMISC, Uint8Array.of(0, 0))).to.equal(Ctrl.ERR);
      const table = Uint8Array.of(1, 0, 0, 0, 2, 0, 0, 0, 0, 9, 1, 0, 0, 0, 0x33, 0x33, 0, 0, 0, 1);
      expect(cmd(Ctrl.MAC, Ctrl.MAC_TABLE_SET, table)).to.equal(Ctrl.OK);
      expect(dev.macTable.unicast.map(formatMac)).to.deep.equal(['02:00:00:00:00:09']);
      expect(dev.macTable.multicast.map(formatMac)).to.deep.equal(['33:33:00:00:00:01']);
      expect(cmd(Ctrl.MAC, Ctrl.MAC_TABLE_SET, table.subarray(0, 15))).to.equal(Ctrl.ERR);
      expect(cmd(Ctrl.MAC, Ctrl.MAC_TABLE_SET, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0))).to.equal(Ctrl.ERR);
      expect(cmd(Ctrl.MAC, Ctrl.MAC_ADDR_SET, Uint8Array.of(2, 1, 2, 3, 4, 5))).to.equal(Ctrl.OK);
      expect(formatMac(new Uint8Array(cfg(dev).buffer, 0, 6))).to.equal('02:01:02:03:04:05');
      expect(dev.metrics.ctrl).to.deep.equal({ commands: 7, errors: 3 });
    });

    it('sets queue pairs (MQ), rejects out-of-range counts, and detaches backend queues', () => {
      const b = new MemoryNetBackend(events.loop, { queuePairs: 2 });
      const { dev, h, cmd } = setup({ queuePairs: 2 }, b);
      expect(b.activePairs).to.equal(1);
      expect(cmd(Ctrl.MQ, Ctrl.MQ_VQ_PAIRS_SET, le16(2))).to.equal(Ctrl.OK);
      expect(dev.activePairs).to.equal(2);
      expect(b.activePairs).to.equal(2);
      expect(cmd(Ctrl.MQ, Ctrl.MQ_VQ_PAIRS_SET, le16(0))).to.equal(Ctrl.ERR);
      expect(cmd(Ctrl.MQ, Ctrl.MQ_VQ_PAIRS_SET, le16(3))).to.equal(Ctrl.ERR);
      // pair 1 transmits on backend queue 1 and receives from it
      h.driver.sendTx(withHeader(frame(100)), 1);
      h.kick(3);
      expect(b.sent.map((s) => s.queue)).to.deep.equal([1]);
      h.driver.addRxBuffers(2, 2048, 1);
      b.inject(withHeader(frame(80)), 1);
      h.run();
      expect(h.driver.readRx(1)).to.have.length(1);
      expect(dev.metrics.pair(1)).to.include({ txFrames: 1, rxFrames: 1 });
    });

    it('passes guest offloads to the backend at activation and on CTRL_GUEST_OFFLOADS; refuses others', () => {
      const { cmd } = setup();
      expect(backend.guestOffloads).to.deep.equal({ csum: true, tso4: true, tso6: true, ecn: true, ufo: false });
      const le64 = (b: bigint): Uint8Array => {
        const u = new Uint8Array(8);
        new DataView(u.buffer).setBigUint64(0, b, true);
        return u;
      };
      expect(cmd(Ctrl.GUEST_OFFLOADS, Ctrl.GUEST_OFFLOADS_SET, le64(F.GUEST_CSUM))).to.equal(Ctrl.OK);
      expect(backend.guestOffloads).to.deep.equal({ csum: true, tso4: false, tso6: false, ecn: false, ufo: false });
      expect(cmd(Ctrl.GUEST_OFFLOADS, Ctrl.GUEST_OFFLOADS_SET, le64(F.GUEST_UFO))).to.equal(Ctrl.ERR); // not negotiated
      expect(cmd(Ctrl.GUEST_OFFLOADS, Ctrl.GUEST_OFFLOADS_SET, le64(F.MRG_RXBUF))).to.equal(Ctrl.ERR); // not an offload
      expect(GUEST_OFFLOAD_MASK & F.MRG_RXBUF).to.equal(0n);
    });

    it('announce: the device raises ANNOUNCE, the driver acks it', () => {
      const { dev, h, cmd } = setup();
      dev.announce();
      expect(h.configChanges).to.equal(1);
      expect(cfg(dev).getUint16(NetConfigLayout.status, true)).to.equal(NetStatus.LINK_UP | NetStatus.ANNOUNCE);
      expect(cmd(Ctrl.ANNOUNCE, Ctrl.ANNOUNCE_ACK)).to.equal(Ctrl.OK);
      expect(cfg(dev).getUint16(NetConfigLayout.status, true)).to.equal(NetStatus.LINK_UP);
    });

    it('answers unknown classes, VLAN and short commands with ERR; a chain without an ack byte gets length 0', () => {
      const { h, cmd } = setup();
      expect(cmd(Ctrl.VLAN, 0, le16(5))).to.equal(Ctrl.ERR);
      expect(cmd(99, 0)).to.equal(Ctrl.ERR);
      h.driver.ctrl(h.ctrlQueue, Ctrl.RX, Ctrl.RX_PROMISC, Uint8Array.of(1), { noAck: true });
      h.kick(h.ctrlQueue);
      const used = h.mqs[h.ctrlQueue].readUsed();
      expect(used.map((u) => u.len)).to.deep.equal([1, 1, 0]);
      expect(h.resets).to.deep.equal([]);
    });
  });

  describe('rate limiting (fake timers)', () => {
    let clock: sinon.SinonFakeTimers;
    beforeEach(() => {
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    });
    afterEach(() => clock.restore());

    it('TX: holds frames over the packet budget and sends them when the bucket refills', () => {
      const dev = make({ rateLimiter: { tx: { ops: { size: 2, refillTimeMs: 100 } } } });
      const h = activateNet(dev, events);
      for (let i = 0; i < 4; i++) h.driver.sendTx(withHeader(frame(100, i)));
      h.kick(1);
      expect(backend.sent).to.have.length(2);
      expect(dev.metrics.pair(0).txThrottled).to.equal(1);
      expect(h.mqs[1].readUsed()).to.have.length(2); // the held chain is not returned yet
      clock.tick(50);
      expect(backend.sent).to.have.length(3);
      clock.tick(50);
      expect(backend.sent).to.have.length(4);
      expect(backend.sent.map((s) => s.frame[VNET_HDR_SIZE + 14])).to.deep.equal(
        [0, 1, 2, 3].map((i) => frame(100, i)[14]),
      );
    });

    it('RX: stops reading the backend over the byte budget and resumes after the refill', () => {
      const dev = make({ rateLimiter: { rx: { bandwidth: { size: 1000, refillTimeMs: 100 } } } });
      const h = activateNet(dev, events);
      h.driver.addRxBuffers(8, 2048);
      for (let i = 0; i < 4; i++) backend.inject(withHeader(frame(500, i)));
      pump(h);
      expect(h.driver.readRx()).to.have.length(2);
      expect(events.loop.watchedFds).to.not.include(backend.fds[0]);
      expect(dev.metrics.pair(0).rxThrottled).to.equal(1);
      clock.tick(50);
      expect(h.driver.readRx()).to.have.length(1);
      clock.tick(50);
      expect(h.driver.readRx()).to.have.length(1);
    });
  });

  describe('reset and destroy', () => {
    it('reset stops the queues and puts MAC and modes back; destroy closes the backend', () => {
      const dev = make();
      const h = activateNet(dev, events);
      dev.setMac(Uint8Array.of(2, 2, 2, 2, 2, 2));
      dev.reset();
      expect(formatMac(dev.mac)).to.equal('52:54:00:12:34:56');
      h.driver.sendTx(withHeader(frame(100)));
      h.kick(1);
      expect(backend.sent).to.have.length(0);
      expect(events.loop.watchedFds).to.not.include(backend.fds[0]);
      dev.destroy();
      expect(backend.closed).to.equal(true);
    });
  });
});
