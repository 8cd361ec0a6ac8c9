import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { c, O_CLOEXEC, O_NONBLOCK, O_RDWR } from '../../../core/native/libc.js';
import { VNET_HDR_SIZE } from '../constants.js';
import { decodeHeader } from '../header.js';
import { arp, ethernet, icmpEcho, inetChecksum, ipv4, ipv4Packet } from '../testing.js';
import { ifreq, net, Tun } from './native.js';
import { TapBackend } from './tap.js';
import { GuestAddress } from '../../../core/address.js';
import { createAnonymousMmapMemory } from '../../../core/memory/index.js';
import { HostIovec } from '../iovec.js';
import { skipUnlessCi } from '../../../test/setup/environment.js';

const MAC = Uint8Array.of(0x02, 0x54, 0, 0xaa, 0xbb, 0xcc);
const HOST_IP = '10.213.77.1';
const GUEST_IP = '10.213.77.2';

function canUseTap(): string | undefined {
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (process.getuid?.() !== 0) return 'not root (creating a tap needs CAP_NET_ADMIN)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore', timeout: 5000 });
  } catch {
    return 'no ip(8)';
  }
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Reads frames until one matches `want` (EtherType filter), for up to ~3 s. */
async function recvMatching(
  tap: TapBackend,
  want: (f: Uint8Array) => boolean,
): Promise<{ hdr: Uint8Array; frame: Uint8Array } | undefined> {
  const buf = new Uint8Array(65563);
  for (let i = 0; i < 300; i++) {
    const n = tap.recv(0, buf);
    if (n < 0) {
      await sleep(10);
      continue;
    }
    const frame = buf.slice(VNET_HDR_SIZE, n);
    if (want(frame)) return { hdr: buf.slice(0, VNET_HDR_SIZE), frame };
  }
  return undefined;
}

describe('plugins/virtio-net TapBackend (real /dev/net/tun)', function () {
  this.timeout(20_000);
  const why = canUseTap();
  before(function () {
    if (why) skipUnlessCi(this, why);
  });
  const name = `tsvt${process.pid % 100_000}`;
  let tap: TapBackend | undefined;
  afterEach(() => {
    tap?.close();
    tap = undefined;
  });

  it('creates a tap with a vnet header, probes offloads and sets them (TUNSETOFFLOAD)', () => {
    tap = TapBackend.open({ name, create: true });
    expect(tap.name).to.equal(name);
    expect(tap.vnetHeader).to.equal(true);
    expect(existsSync(`/sys/class/net/${name}`)).to.equal(true);
    expect(tap.offloads.guest.csum).to.equal(true);
    expect(tap.offloads.guest.tso4).to.equal(true);
    tap.setGuestOffloads({ csum: true, tso4: true, tso6: true, ecn: true, ufo: false });
    tap.setGuestOffloads({ csum: false, tso4: false, tso6: false, ecn: false, ufo: false });
    expect(tap.recv(0, new Uint8Array(2048))).to.equal(-1); // non-blocking, nothing yet
    tap.close();
    expect(existsSync(`/sys/class/net/${name}`)).to.equal(false); // not persistent: gone with its fd
  });

  it('refuses a missing tap without create, bad names, and fds that are no tap', () => {
    expect(() => TapBackend.open({ name: 'tsvt-nope-0' })).to.throw(/does not exist.*ip tuntap add/);
    expect(() => TapBackend.open({ name: 'a/b', create: true })).to.throw(/not a valid interface name/);
    const fd = c.open('/dev/null', O_RDWR, 0) as number;
    try {
      expect(() => TapBackend.open({ fds: [fd] })).to.throw(/TUNGETIFF/);
    } finally {
      c.close(fd);
    }
  });

  it('takes an inherited tap fd (checks IFF_TAP / IFF_NO_PI, sees the vnet header)', () => {
    const fd = c.open('/dev/net/tun', O_RDWR | O_NONBLOCK | O_CLOEXEC, 0) as number;
    expect(net.ioctlIfreq(fd, Tun.TUNSETIFF, ifreq(name, Tun.IFF_TAP | Tun.IFF_NO_PI | Tun.IFF_VNET_HDR))).to.equal(0);
    tap = TapBackend.open({ fds: [fd] }); // owns fd now
    expect(tap.name).to.equal(name);
    expect(tap.vnetHeader).to.equal(true);
  });

  it('multiqueue: one fd per pair, unused queues detached', () => {
    tap = TapBackend.open({ name, create: true, queuePairs: 2 });
    expect(tap.queuePairs).to.equal(2);
    expect(tap.fd(0)).to.not.equal(tap.fd(1));
    tap.setActiveQueuePairs(1);
    tap.setActiveQueuePairs(2);
  });

  it('moves frames through the host kernel: ARP and ICMP echo to an address on the tap', async () => {
    tap = TapBackend.open({ name, create: true });
    execFileSync('ip', ['link', 'set', 'dev', name, 'up'], { timeout: 5000 });
    execFileSync('ip', ['addr', 'add', `${HOST_IP}/30`, 'dev', name], { timeout: 5000 });
    const zeroHdr = new Uint8Array(VNET_HDR_SIZE);
    const send = (f: Uint8Array): boolean => tap!.send(0, Buffer.concat([zeroHdr, f]));
    // ARP: who has HOST_IP? The kernel answers on the tap (and learns our MAC).
    const bcast = new Uint8Array(6).fill(0xff);
    expect(send(ethernet(bcast, MAC, 0x0806, arp(1, MAC, ipv4(GUEST_IP), new Uint8Array(6), ipv4(HOST_IP))))).to.equal(
      true,
    );
    const arpReply = await recvMatching(tap, (f) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2);
    expect(arpReply, 'ARP reply from the host').to.not.equal(undefined);
    const hostMac = arpReply!.frame.slice(6, 12);
    expect([...arpReply!.frame.subarray(38, 42)]).to.deep.equal([...ipv4(GUEST_IP)]);
    // ICMP echo request -> echo reply with a valid checksum, our payload back.
    const payload = Buffer.from('tsvmm virtio-net tap test payload');
    const ping = ethernet(
      hostMac,
      MAC,
      0x0800,
      ipv4Packet(ipv4(GUEST_IP), ipv4(HOST_IP), 1, icmpEcho(8, 0x1234, 1, payload)),
    );
    expect(send(ping)).to.equal(true);
    const reply = await recvMatching(tap, (f) => f[12] === 0x08 && f[13] === 0x00 && f[23] === 1 && f[34] === 0);
    expect(reply, 'ICMP echo reply from the host').to.not.equal(undefined);
    const icmp = reply!.frame.subarray(34);
    expect(inetChecksum(icmp)).to.equal(0);
    expect(Buffer.from(icmp.subarray(8)).equals(payload)).to.equal(true);
    expect(decodeHeader(reply!.hdr).gsoType).to.equal(0);
  });

  it('sendv gathers a frame straight from guest RAM (writev of host addresses): the host answers it', async () => {
    tap = TapBackend.open({ name, create: true });
    execFileSync('ip', ['link', 'set', 'dev', name, 'up'], { timeout: 5000 });
    execFileSync('ip', ['addr', 'add', `${HOST_IP}/30`, 'dev', name], { timeout: 5000 });
    const mem = createAnonymousMmapMemory({ regions: [{ start: 0n, size: 1n << 20n }], backend: 'anonymous' });
    try {
      const bcast = new Uint8Array(6).fill(0xff);
      const frame = Buffer.concat([
        new Uint8Array(VNET_HDR_SIZE),
        ethernet(bcast, MAC, 0x0806, arp(1, MAC, ipv4(GUEST_IP), new Uint8Array(6), ipv4(HOST_IP))),
      ]);
      // The frame in three guest buffers (header, 20 bytes, the rest), scattered in guest RAM.
      const pieces = [
        { at: 0x1000, from: 0, to: VNET_HDR_SIZE },
        { at: 0x8000, from: VNET_HDR_SIZE, to: 32 },
        { at: 0x3000, from: 32, to: frame.length },
      ];
      for (const p of pieces) mem.write(GuestAddress.of(p.at), frame.subarray(p.from, p.to));
      const iov = new HostIovec();
      expect(
        iov.fill(
          mem,
          pieces.map((p) => ({ addr: GuestAddress.of(p.at), len: p.to - p.from })),
        ),
      ).to.equal(true);
      expect(iov.count).to.equal(3);
      expect(tap.sendv(0, iov)).to.equal(true);
      const arpReply = await recvMatching(tap, (f) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2);
      expect(arpReply, 'ARP reply from the host').to.not.equal(undefined);
      expect([...arpReply!.frame.subarray(38, 42)]).to.deep.equal([...ipv4(GUEST_IP)]);
    } finally {
      mem.close();
    }
  });
});
