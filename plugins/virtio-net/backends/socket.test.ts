import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeEventSystem } from '../../virtio/testing.js';
import { MAX_FRAME_WITH_HDR, VNET_HDR_SIZE } from '../constants.js';
import { VirtioNet } from '../device.js';
import { activateNet, arp, BROADCAST, ethernet, ipv4, withHeader } from '../testing.js';
import { UvEventLoop } from '../../../core/events/uv-event-loop.js';
import { DgramSocketBackend } from './socket.js';

const MAC_A = Uint8Array.of(0x02, 0, 0, 0, 0, 0xa);
const MAC_B = Uint8Array.of(0x02, 0, 0, 0, 0, 0xb);
const arpFrame = (): Uint8Array =>
  ethernet(BROADCAST, MAC_A, 0x0806, arp(1, MAC_A, ipv4('10.9.0.1'), new Uint8Array(6), ipv4('10.9.0.2')));

describe('plugins/virtio-net DgramSocketBackend (real sockets, no privileges)', () => {
  let dir: string;
  const open: DgramSocketBackend[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnet-sock-'));
  });
  afterEach(() => {
    for (const b of open.splice(0)) b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const keep = <T extends DgramSocketBackend[]>(...b: T): T => {
    open.push(...b);
    return b;
  };

  it('a socket pair carries frames both ways, one per datagram, and reports nothing waiting as -1', () => {
    const [a, b] = keep(...DgramSocketBackend.pair());
    expect([a.vnetHeader, a.queuePairs, a.offloads.host.csum]).to.deep.equal([false, 1, false]);
    const buf = new Uint8Array(MAX_FRAME_WITH_HDR + 1);
    expect(b.recv(0, buf)).to.equal(-1);
    const f1 = arpFrame();
    const f2 = ethernet(MAC_B, MAC_A, 0x0800, new Uint8Array(1400).fill(7));
    expect(a.send(0, f1)).to.equal(true);
    expect(a.send(0, f2)).to.equal(true);
    expect(b.recv(0, buf)).to.equal(f1.length);
    expect(Buffer.from(buf.subarray(0, f1.length)).equals(f1)).to.equal(true);
    expect(b.recv(0, buf)).to.equal(f2.length);
    expect(b.send(0, f1)).to.equal(true);
    expect(a.recv(0, buf)).to.equal(f1.length);
    expect(b.recv(0, buf)).to.equal(-1);
  });

  it('holds frames the peer cannot take yet and delivers every one, in order, as it drains (bulk TCP)', async () => {
    const loop = new UvEventLoop();
    const [a, b] = keep(...DgramSocketBackend.pair(loop));
    const frame = new Uint8Array(1500);
    const count = 600; // far more than a unix datagram queue holds
    for (let i = 0; i < count; i++) {
      new DataView(frame.buffer).setUint32(0, i);
      expect(a.send(0, frame), `frame ${i}`).to.equal(true);
    }
    const got: number[] = [];
    const buf = new Uint8Array(2048);
    while (got.length < count) {
      for (let n = b.recv(0, buf); n >= 0; n = b.recv(0, buf)) got.push(new DataView(buf.buffer).getUint32(0));
      await new Promise((r) => setTimeout(r, 2)); // a turn of the loop: the backlog's timer sends more
    }
    expect(got).to.deep.equal(Array.from({ length: count }, (_, i) => i));
    expect(a.droppedFull).to.equal(0);
  });

  it('reports the real length of an oversized datagram (MSG_TRUNC) so the device can drop it', () => {
    const [a, b] = keep(...DgramSocketBackend.pair());
    expect(a.send(0, new Uint8Array(70_000))).to.equal(true);
    expect(b.recv(0, new Uint8Array(MAX_FRAME_WITH_HDR + 1))).to.equal(70_000);
  });

  it('unix paths: frames to a peer not bound yet are lost; then both sides talk; close removes the socket file', () => {
    const pa = path.join(dir, 'a.sock');
    const pb = path.join(dir, 'b.sock');
    const [a] = keep(DgramSocketBackend.open({ kind: 'unix', path: pa, peer: pb }));
    expect(a.send(0, arpFrame())).to.equal(false);
    const [b] = keep(DgramSocketBackend.open({ kind: 'unix', path: pb, peer: pa }));
    const buf = new Uint8Array(2048);
    expect(a.send(0, arpFrame())).to.equal(true);
    expect(b.recv(0, buf)).to.equal(arpFrame().length);
    expect(b.send(0, arpFrame())).to.equal(true);
    expect(a.recv(0, buf)).to.equal(arpFrame().length);
    b.close();
    expect(fs.existsSync(pb)).to.equal(false);
    expect(a.send(0, arpFrame())).to.equal(false); // peer gone: lost, not an error
  });

  it('udp on loopback: two endpoints exchange frames', () => {
    const base = 20_000 + (process.pid % 20_000);
    const [a] = keep(
      DgramSocketBackend.open({
        kind: 'udp',
        local: { host: '127.0.0.1', port: base },
        remote: { host: '127.0.0.1', port: base + 1 },
      }),
    );
    const [b] = keep(
      DgramSocketBackend.open({
        kind: 'udp',
        local: { host: '127.0.0.1', port: base + 1 },
        remote: { host: '127.0.0.1', port: base },
      }),
    );
    const buf = new Uint8Array(2048);
    expect(a.send(0, arpFrame())).to.equal(true);
    // loopback UDP is delivered synchronously on send
    expect(b.recv(0, buf)).to.equal(arpFrame().length);
    expect(b.send(0, arpFrame())).to.equal(true);
    expect(a.recv(0, buf)).to.equal(arpFrame().length);
  });

  it('rejects bad endpoints with a clear error', () => {
    expect(() =>
      DgramSocketBackend.open({
        kind: 'udp',
        local: { host: 'localhost', port: 1 },
        remote: { host: '127.0.0.1', port: 2 },
      }),
    ).to.throw(/not an IPv4 address/);
    expect(() => DgramSocketBackend.open({ kind: 'unix', path: path.join(dir, 'x'.repeat(120)), peer: 'p' })).to.throw(
      /1\.\.107 bytes/,
    );
    expect(() =>
      DgramSocketBackend.open({ kind: 'unix', path: path.join(dir, 'no', 'such', 'dir.sock'), peer: 'p' }),
    ).to.throw(/bind failed: ENOENT/);
  });

  it('two virtio-net devices wired by a socket pair exchange frames end to end', () => {
    const events = new FakeEventSystem();
    const [ba, bb] = keep(...DgramSocketBackend.pair());
    const devA = new VirtioNet({ id: 'a', backend: ba, mac: MAC_A, defer: () => {} }, events.loop);
    const devB = new VirtioNet({ id: 'b', backend: bb, mac: MAC_B, defer: () => {} }, events.loop);
    const ha = activateNet(devA, events);
    const hb = activateNet(devB, events);
    hb.driver.addRxBuffers(4, 2048);
    ha.driver.addRxBuffers(4, 2048);
    const f = arpFrame();
    ha.driver.sendTx(withHeader(f));
    ha.kick(1);
    events.loop.readable.add(bb.fd(0)); // the datagram is already queued; deliver readiness
    hb.run();
    const got = hb.driver.readRx();
    expect(got).to.have.length(1);
    expect(Buffer.from(got[0].frame).equals(f)).to.equal(true);
    expect(got[0].header.numBuffers).to.equal(1);
    // and back
    const reply = ethernet(MAC_A, MAC_B, 0x0806, arp(2, MAC_B, ipv4('10.9.0.2'), MAC_A, ipv4('10.9.0.1')));
    hb.driver.sendTx(withHeader(reply));
    hb.kick(1);
    events.loop.readable.add(ba.fd(0));
    ha.run();
    expect(ha.driver.readRx().map((r) => r.frame.length)).to.deep.equal([reply.length]);
    expect(devA.metrics.pair(0)).to.include({ txFrames: 1, rxFrames: 1 });
    expect(VNET_HDR_SIZE).to.equal(12);
  });
});
