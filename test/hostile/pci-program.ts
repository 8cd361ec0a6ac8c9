/**
 * The hostile-guest program for PCI (hosts/guestkit/tools/hostile-pci.c) in TypeScript, for the unit replay: the
 * same accesses in the same order (ECAM, 0xCF8/0xCFC, the victim's BAR, the hotplug window), against a real root
 * bus, virtio-pci functions over virtio-blk and the hotplug controller on a RangeBus. It returns the program's
 * KEY=VALUE output as a Map, so the unit test and the linux test check the same expectations (pci-attacks.ts).
 */
import { GuestAddress } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { GuestBusDriver } from '../../plugins/pci/testing-guest.js';
import { cf8Address } from '../../plugins/pci/testing-guest.js';

const QSIZE = 16;
const NO_VECTOR = 0xffff;
const BAR_SIZE = 0x10000n;
const C = {
  dfsel: 0x00, df: 0x04, gfsel: 0x08, gf: 0x0c, msix: 0x10, status: 0x14, qsel: 0x16, qsize: 0x18, qvec: 0x1a,
  qen: 0x1c, qdesc: 0x20, qdrv: 0x28, qdev: 0x30,
} as const; // prettier-ignore
const ISR = 0x1000;
const DEVCFG = 0x2000;
const NOTIFY = 0x3000;
const S = { ack: 1, driver: 2, driverOk: 4, featuresOk: 8, needsReset: 0x40 } as const;
const NEXT = 1;
const WRITE = 2;
const CMD_ON = 6; // memory decode + bus master
const MSI_NOWHERE = 0xfee5_5000n;
const MSI_DATA = 0x31;
/** Where the program's pages are in the test's guest memory. */
const RING = 0x10000n;
const HDR = 0x11000n;
const DATA = 0x12000n;

const hex = (v: number | bigint, w = 8): string => v.toString(16).padStart(w, '0');
const a = (v: bigint): GuestAddress => GuestAddress.of(v);

/** What the replay works on: the guest's view of the bus, guest memory, and a way to let the device run. */
export interface PciProgramTarget {
  guest: GuestBusDriver;
  memory: GuestMemory;
  ecam: bigint;
  /** Runs the event loop until the devices are idle (what time does for the real program). */
  settle(): Promise<void>;
}

/** The program, attack by attack; run() returns its output lines as a Map. */
export class HostilePciProgram {
  readonly out = new Map<string, string>();
  private bar = 0n;
  private availIdx = 0;
  private usedSeen = 0;
  private barLo = 0;
  private barHi = 0;
  private line = 0;
  private mcap = 0;
  private tbl = 0n;
  private pba = 0n;

  constructor(
    private readonly t: PciProgramTarget,
    private readonly vslot: number,
    private readonly wslot: number,
    private readonly hotplug: bigint,
    /** The FADT's PM1a event and control block ports (undefined: no FADT). */
    private readonly pm1?: { evt: number; cnt: number },
  ) {}

  private put(k: string, v: string): void {
    this.out.set(k, v);
  }

  // ---- configuration space ----
  private cfgRd(dev: number, fn: number, off: number, size: number): number {
    return Number(this.t.guest.read('mmio', this.t.ecam + BigInt((dev << 15) | (fn << 12) | off), size));
  }
  private cfgWr(dev: number, fn: number, off: number, size: number, v: number): void {
    this.t.guest.write('mmio', this.t.ecam + BigInt((dev << 15) | (fn << 12) | off), size, BigInt(v >>> 0));
  }
  private V(off: number, size: number): number {
    return this.cfgRd(this.vslot, 0, off, size);
  }
  private VW(off: number, size: number, v: number): void {
    this.cfgWr(this.vslot, 0, off, size, v);
  }
  private cf8Rd(bus: number, dev: number, fn: number, off: number, size: number): number {
    return this.t.guest.cf8Read(dev, fn, off, size, bus);
  }
  private cf8Wr(bus: number, dev: number, fn: number, off: number, size: number, v: number): void {
    this.t.guest.cf8Write(dev, fn, off, size, v, bus);
  }
  private capList(dev: number): string {
    const ids: string[] = [];
    let at = this.cfgRd(dev, 0, 6, 2) & 0x10 ? this.cfgRd(dev, 0, 0x34, 1) : 0;
    while (at >= 0x40 && ids.length < 48) {
      ids.push(`${hex(this.cfgRd(dev, 0, at, 1), 2)}@${hex(at, 2)}`);
      at = this.cfgRd(dev, 0, at + 1, 1);
    }
    return ids.join(',');
  }
  private findCap(dev: number, id: number): number {
    let at = this.cfgRd(dev, 0, 6, 2) & 0x10 ? this.cfgRd(dev, 0, 0x34, 1) : 0;
    for (let n = 0; at >= 0x40 && n < 48; n++, at = this.cfgRd(dev, 0, at + 1, 1))
      if (this.cfgRd(dev, 0, at, 1) === id) return at;
    return 0;
  }

  // ---- the victim's BAR ----
  private cr(off: number, size: number): number {
    return Number(this.t.guest.read('mmio', this.bar + BigInt(off), size));
  }
  private cw(off: number, size: number, v: number | bigint): void {
    this.t.guest.write('mmio', this.bar + BigInt(off), size, BigInt(v));
  }
  private cw64(off: number, v: bigint): void {
    this.cw(off, 4, v & 0xffff_ffffn);
    this.cw(off + 4, 4, v >> 32n);
  }
  private status(): number {
    return this.cr(C.status, 1);
  }
  private mark(): number {
    return this.cr(C.msix, 2);
  }

  private reset(): void {
    this.cw(C.status, 1, 0);
  }

  private negotiate(): void {
    this.cw(C.status, 1, S.ack);
    this.cw(C.status, 1, S.ack | S.driver);
    this.cw(C.gfsel, 4, 0);
    this.cw(C.gf, 4, 0);
    this.cw(C.gfsel, 4, 1);
    this.cw(C.gf, 4, 1);
    this.cw(C.status, 1, S.ack | S.driver | S.featuresOk);
  }

  private setup(vector: number): number {
    this.reset();
    this.t.memory.fill(a(RING), 0x1000, 0);
    this.availIdx = this.usedSeen = 0;
    this.negotiate();
    this.layout(vector);
    this.cw(C.status, 1, S.ack | S.driver | S.featuresOk | S.driverOk);
    return this.status();
  }

  private layout(vector: number): void {
    this.cw(C.qsel, 2, 0);
    this.cw(C.qsize, 2, QSIZE);
    this.cw64(C.qdesc, RING);
    this.cw64(C.qdrv, RING + 0x400n);
    this.cw64(C.qdev, RING + 0x800n);
    this.cw(C.qvec, 2, vector);
    this.cw(C.qen, 2, 1);
  }

  private desc(i: number, addr: bigint, len: number, flags: number, next: number): void {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, addr, true);
    dv.setUint32(8, len, true);
    dv.setUint16(12, flags, true);
    dv.setUint16(14, next, true);
    this.t.memory.write(a(RING + BigInt(16 * i)), b);
  }

  private readChain(): void {
    this.t.memory.write(a(HDR), new Uint8Array(16));
    this.t.memory.writeU8(a(HDR + 0x100n), 0xff);
    this.t.memory.fill(a(DATA), 512, 0);
    this.desc(0, HDR, 16, NEXT, 1);
    this.desc(1, DATA, 512, WRITE | NEXT, 2);
    this.desc(2, HDR + 0x100n, 1, WRITE, 0);
  }

  private publish(head: number): void {
    this.t.memory.writeU16(a(RING + 0x404n + BigInt(2 * (this.availIdx % QSIZE))), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.t.memory.writeU16(a(RING + 0x402n), this.availIdx);
  }

  private kick(): void {
    this.cw(NOTIFY, 2, 0);
  }

  private async outcome(): Promise<string> {
    await this.t.settle();
    if (this.status() & S.needsReset && this.status() !== 0xff) return 'needs-reset';
    const used = this.t.memory.readU16(a(RING + 0x802n));
    if (used === this.usedSeen) return 'silent';
    this.usedSeen = used;
    return `used:${this.t.memory.readU8(a(HDR + 0x100n))}`;
  }

  private async good(name: string, vector: number): Promise<void> {
    const st = this.setup(vector);
    if (!(st & S.driverOk)) return this.put(`v-${name}`, `refused:${hex(st, 2)}`);
    this.readChain();
    this.publish(0);
    this.kick();
    const o = await this.outcome();
    const data = new TextDecoder('latin1').decode(this.t.memory.read(a(DATA), 8)).replace(/\0.*$/, '');
    this.put(`v-${name}`, `${o}:${data}`);
  }

  private restoreCfg(): void {
    this.VW(0x04, 2, 0);
    this.VW(0x10, 4, this.barLo);
    this.VW(0x14, 4, this.barHi);
    this.VW(0x3c, 1, this.line);
    this.VW(0x04, 2, CMD_ON);
  }

  private cfgAttacks(): void {
    const id = this.V(0, 4);
    this.put('pci-victim-id', hex(id));
    this.put('pci-witness-id', hex(this.cfgRd(this.wslot, 0, 0, 4)));
    this.put('pci-hostbridge-id', hex(this.cfgRd(0, 0, 0, 4)));
    const before = this.capList(this.vslot);
    this.put('pci-caps', before);

    const ro = [0x00, 0x02, 0x08, 0x09, 0x0a, 0x0b, 0x0e, 0x2c, 0x2e, 0x34, 0x3d];
    let at = this.V(0x34, 1);
    for (let n = 0; at >= 0x40 && n < 48 && ro.length < 62; n++) {
      ro.push(at, at + 1);
      at = this.V(at + 1, 1);
    }
    const changed: string[] = [];
    for (const off of ro) {
      const was = this.V(off, 1);
      this.VW(off, 1, ~was & 0xff);
      this.VW(off, 1, off);
      if (this.V(off, 1) !== was) changed.push(off.toString(16));
    }
    this.VW(0x34, 1, 0x40);
    this.put('pci-ro', changed.length ? changed.join(',') + ',' : 'kept');

    this.barLo = this.V(0x10, 4);
    this.barHi = this.V(0x14, 4);
    this.line = this.V(0x3c, 1);
    this.put('pci-bar0', hex(this.barHi) + hex(this.barLo));

    this.VW(0x04, 2, 0);
    let sizing = '';
    for (let off = 0x10; off <= 0x24; off += 4) {
      this.VW(off, 4, 0xffff_ffff);
      sizing += `${hex(this.V(off, 4))},`;
    }
    this.VW(0x30, 4, 0xffff_f801);
    this.put('pci-sizing', `${sizing}rom:${hex(this.V(0x30, 4))}`);
    this.restoreCfg();

    for (let off = 0; off < 4096; off += off < 256 ? 1 : 61)
      for (const size of [1, 2, 4]) {
        if (off + size > 4096) continue;
        this.V(off, size);
        this.VW(off, size, 0xffff_ffff);
        this.VW(off, size, 0);
      }
    for (let off = 0; off < 256; off++) {
      this.cf8Rd(0, this.vslot, 0, off, 1);
      this.cf8Rd(0, this.vslot, 0, off & ~1, 2);
      this.cf8Wr(0, this.vslot, 0, off, 1, 0xff);
      this.cf8Wr(0, this.vslot, 0, off, 1, 0);
    }
    this.restoreCfg();
    const after = this.capList(this.vslot);
    this.put('pci-sweep', after === before && this.V(0, 4) === id ? 'kept' : after);
    this.put('pci-sweep-answers', this.cr(0x12, 2) !== 0xffff ? 'yes' : 'no');

    const hb = this.cf8Rd(0, 0, 0, 0, 4);
    for (let off = 0; off < 256; off++) {
      this.cf8Wr(0, 0, 0, off, 1, 0xff);
      this.cf8Wr(0, 0, 0, off, 1, 0);
    }
    this.put(
      'pci-hostbridge',
      this.cf8Rd(0, 0, 0, 0, 4) === hb && this.cfgRd(0, 0, 0x10, 4) === 0 ? 'kept' : 'changed',
    );

    const g = this.t.guest;
    this.cfgWr(this.vslot, 3, 0x04, 2, 0xffff);
    this.cfgWr(29, 0, 0x10, 4, 0x1234_5000);
    this.cf8Wr(1, 0, 0, 0x04, 4, 0xffff_ffff);
    this.cf8Wr(255, 31, 7, 0x3c, 4, 0);
    let all = this.cfgRd(this.vslot, 3, 0, 4) & this.cfgRd(29, 0, 0, 4) & this.cfgRd(31, 7, 0, 4);
    all &= this.cf8Rd(1, 0, 0, 0, 4) & this.cf8Rd(255, 31, 7, 0, 4) & this.cf8Rd(0, this.vslot, 5, 0, 4);
    all &= this.V(0x100, 4) & this.V(0xffc, 4) & this.V(0x101, 4);
    g.write('pio', 0xcf8, 4, cf8Address(0, this.vslot, 0, 0) & 0x7fff_ffff);
    all &= Number(g.read('pio', 0xcfc, 4));
    g.write('pio', 0xcf9, 1, 0x06);
    g.write('pio', 0xcf8, 2, 0x1234);
    all &= Number(g.read('pio', 0xcfa, 2)) | 0xffff_0000;
    g.write('pio', 0xcf8, 4, cf8Address(0, this.vslot, 0, 0));
    const odd = Number(g.read('pio', 0xcfd, 4));
    this.put('pci-absent', hex(all >>> 0));
    this.put('pci-cf8-odd', hex(odd));
    this.put('pci-cf8-victim', hex(this.cf8Rd(0, this.vslot, 0, 0, 4)));

    this.cw(C.msix, 2, 1);
    this.put('pci-mark', hex(this.mark(), 4));
    const wbar =
      (BigInt(this.cfgRd(this.wslot, 0, 0x14, 4)) << 32n) | BigInt(this.cfgRd(this.wslot, 0, 0x10, 4) & ~0xf);
    const orig = this.bar;
    const moves: [string, bigint, number][] = [
      ['ram', 0x100_0000n, 0],
      ['witness', wbar, 1],
      ['ecam', this.t.ecam, 1],
      ['lapic', 0xfee0_0000n, 1],
      ['ioapic', 0xfec0_0000n, 0],
      ['above-2-52', 1n << 52n, 0],
      ['wrap', 0xffff_ffff_fffe_0000n, 0],
      ['sizing', 0xffff_ffff_ffff_0000n, 0],
      ['zero', 0n, 0],
      ['self-plus', orig + BAR_SIZE, 2],
    ];
    for (const [name, to, probe] of moves) {
      this.VW(0x04, 2, 0);
      this.VW(0x10, 4, Number(to & 0xffff_ffffn) | 0xc);
      this.VW(0x14, 4, Number(to >> 32n));
      this.VW(0x04, 2, CMD_ON);
      const old = this.mark();
      let seen = '-';
      if (probe) {
        const v = Number(g.read('mmio', to + BigInt(C.msix), 2));
        seen = v === 1 ? 'victim' : probe === 2 ? 'other' : 'holder';
      }
      this.restoreCfg();
      this.put(
        `pci-move-${name}`,
        `${old === 0xffff ? 'unmapped' : 'mapped'}:${seen}:${this.mark() === 1 ? 'back' : 'lost'}`,
      );
    }
    this.VW(0x30, 4, 0xfeb0_0001);
    this.put('pci-rom', hex(this.V(0x30, 4)));
    this.restoreCfg();
  }

  private async virtioAttacks(): Promise<void> {
    await this.good('good-before', NO_VECTOR);
    this.setup(NO_VECTOR);
    let qsel = '';
    for (const sel of [1, 5, 0x7fff, 0xffff]) {
      this.reset();
      this.negotiate();
      this.cw(C.qsel, 2, sel);
      this.cw(C.qsize, 2, 8);
      this.cw64(C.qdesc, 0x40_0000_0000n);
      this.cw(C.qvec, 2, 0);
      this.cw(C.qen, 2, 1);
      const seen = [this.cr(C.qsize, 2), this.cr(C.qvec, 2), this.cr(C.qen, 2), this.cr(C.qdesc, 4)];
      qsel += `${seen.map((x) => x.toString(16)).join('/')},`;
    }
    this.put('v-qsel', qsel);

    this.reset();
    this.cw(C.msix, 2, 0x1234);
    const mc = this.cr(C.msix, 2);
    this.cw(C.qsel, 2, 0);
    this.cw(C.qvec, 2, 7);
    this.put('v-vectors', `${hex(mc, 4)},${hex(this.cr(C.qvec, 2), 4)}`);

    this.reset();
    this.cw(C.status, 1, S.ack | S.driver);
    let df = 0;
    for (const sel of [2, 3, 0x80, 0xffff_ffff]) {
      this.cw(C.dfsel, 4, sel);
      df |= this.cr(C.df, 4);
      this.cw(C.gfsel, 4, sel);
      this.cw(C.gf, 4, 0xffff_ffff);
    }
    this.cw(C.gfsel, 4, 0);
    this.cw(C.gf, 4, 0);
    this.cw(C.gfsel, 4, 1);
    this.cw(C.gf, 4, 1);
    this.cw(C.status, 1, S.ack | S.driver | S.featuresOk);
    this.put('v-featsel', `${hex(df)}:${hex(this.status(), 2)}`);

    this.reset();
    this.cw(C.status, 1, S.ack | S.driver | S.driverOk);
    const s1 = this.status();
    this.reset();
    this.cw(C.status, 1, S.ack | S.driver);
    this.cw(C.gfsel, 4, 1);
    this.cw(C.gf, 4, 0);
    this.cw(C.status, 1, S.ack | S.driver | S.featuresOk);
    const s2 = this.status();
    this.setup(NO_VECTOR);
    this.cw(C.status, 1, S.ack);
    const s3 = this.status();
    this.cw(C.status, 1, S.needsReset | 0xf);
    const s4 = this.status();
    this.cw(C.status, 1, 0xff);
    const s5 = this.status();
    this.put('v-status', [s1, s2, s3, s4, s5].map((s) => hex(s, 2)).join(','));

    this.reset();
    this.negotiate();
    this.t.memory.fill(a(RING), 0x1000, 0);
    this.availIdx = this.usedSeen = 0;
    this.layout(NO_VECTOR);
    this.cw(C.qsize, 2, 3);
    this.cw64(C.qdesc, 0x40_0000_0000n);
    this.cw(C.status, 1, 0xf);
    this.cw(C.qen, 2, 0);
    this.cw(C.qsize, 2, 2);
    this.cw64(C.qdrv, 0x40_0000_0000n);
    this.cw64(C.qdev, this.bar);
    this.readChain();
    this.publish(0);
    this.kick();
    this.put('v-relayout', `${await this.outcome()}:${this.cr(C.qsize, 2).toString(16)}`);

    this.setup(NO_VECTOR);
    this.readChain();
    this.publish(0);
    this.cw(NOTIFY + 1, 1, 0);
    this.cw(NOTIFY + 2, 2, 0);
    this.cw(NOTIFY + 0x100, 2, 64);
    this.cw(NOTIFY + 0xffc, 4, 0xffff_ffff);
    this.cw(NOTIFY + 20, 2, 5);
    this.cw(NOTIFY + 0x1000 - 2, 2, 0);
    this.cw(NOTIFY + 0x1000 - 1, 1, 0);
    const ab = await this.outcome();
    if (ab === 'silent') this.kick();
    this.put('v-notify', `${ab}:${await this.outcome()}`);
    for (let i = 0; i < 3000; i++) this.cw(NOTIFY + 4 * (i % 8), 2, i & 0xffff);
    this.readChain();
    this.publish(0);
    this.kick();
    this.put('v-notify-storm', await this.outcome());

    this.cr(ISR, 1);
    const odd = [
      this.cr(ISR, 4),
      this.cr(ISR + 1, 1),
      this.cr(ISR + 2, 2),
      this.cr(DEVCFG + 0xffe, 4),
      this.cr(DEVCFG + 1, 4),
      this.cr(DEVCFG + 0x800, 1),
      this.cr(DEVCFG + 0xfff, 1),
    ].map((x) => x.toString(16));
    const cap = this.t.guest.read('mmio', this.bar + BigInt(DEVCFG), 8);
    this.cw(ISR, 4, 0xffff_ffff);
    this.cw(DEVCFG, 8, 0xffff_ffffn);
    this.cw(DEVCFG + 0xffd, 4, 0xffff_ffff);
    const cap2 = this.t.guest.read('mmio', this.bar + BigInt(DEVCFG), 8);
    this.put('v-odd', `${odd.join(',')}:${cap}:${cap2}`);

    let pc = 0;
    for (let n = 0, at = this.V(0x34, 1); at >= 0x40 && n < 48 && !pc; n++, at = this.V(at + 1, 1))
      if (this.V(at, 1) === 0x09 && this.V(at + 3, 1) === 5) pc = at;
    let nq = 0;
    let kept = 0;
    if (pc) {
      this.VW(pc + 4, 1, 0);
      this.VW(pc + 8, 4, 0x12);
      this.VW(pc + 12, 4, 2);
      nq = this.V(pc + 16, 4) & 0xffff;
      this.VW(pc + 16, 4, 0xdeadbeef);
      const wins = [
        [0, 0xfffe, 4],
        [0, 0x10000, 1],
        [0, 0x12, 3],
        [0, 0x13, 2],
        [5, 0x12, 2],
        [0, 0xffff_ffff, 1],
      ];
      for (const [b, off, len] of wins) {
        this.VW(pc + 4, 1, b);
        this.VW(pc + 8, 4, off);
        this.VW(pc + 12, 4, len);
        kept |= this.V(pc + 16, 4) ^ 0xdeadbeef;
        this.VW(pc + 16, 4, 0xdeadbeef);
      }
    }
    this.put('v-pcicfg', `${nq.toString(16)},${pc ? (kept ? 'changed' : 'kept') : 'none'}`);

    this.setup(NO_VECTOR);
    this.readChain();
    this.desc(2, HDR + 0x100n, 1, WRITE | NEXT, 1);
    this.publish(0);
    this.kick();
    this.put('v-loop', await this.outcome());

    this.setup(NO_VECTOR);
    this.readChain();
    this.publish(0);
    this.kick();
    this.VW(0x04, 2, 0);
    const offMark = this.mark();
    let inflight = await this.outcome();
    this.VW(0x04, 2, CMD_ON);
    if (inflight === 'silent') inflight = `later-${await this.outcome()}`;
    this.put('v-decode-off', `${hex(offMark, 4)}:${inflight}`);
    await this.good('good-after-decode', NO_VECTOR);
  }

  private ctrl(): number {
    return this.V(this.mcap + 2, 2);
  }
  private setCtrl(v: number): void {
    this.VW(this.mcap + 2, 2, v);
  }
  private tw(off: number, size: number, v: bigint | number): void {
    this.t.guest.write('mmio', this.tbl + BigInt(off), size, BigInt(v));
  }
  private tr(off: number, size = 4): number {
    return Number(this.t.guest.read('mmio', this.tbl + BigInt(off), size));
  }
  private pr(off: number): number {
    return Number(this.t.guest.read('mmio', this.pba + BigInt(off), 4));
  }
  private entry(i: number, addr: bigint, data: number, vc: number): void {
    this.tw(16 * i, 4, addr & 0xffff_ffffn);
    this.tw(16 * i + 4, 4, addr >> 32n);
    this.tw(16 * i + 8, 4, data);
    this.tw(16 * i + 12, 4, vc);
  }

  private async msixAttacks(): Promise<void> {
    this.mcap = this.findCap(this.vslot, 0x11);
    this.put('m-msi-cap', this.findCap(this.vslot, 0x05) ? 'present' : 'none');
    const c = this.ctrl();
    const t = this.V(this.mcap + 4, 4);
    const p = this.V(this.mcap + 8, 4);
    const nvec = (c & 0x7ff) + 1;
    this.tbl = this.bar + BigInt(t & ~7);
    this.pba = this.bar + BigInt(p & ~7);
    this.put('m-cap', `vectors:${nvec} table:${t.toString(16)} pba:${p.toString(16)}`);

    this.setCtrl(0);
    for (let i = 0; i < 16; i++) this.tw(i, 1, 0xa0 + i);
    this.tw(1, 2, 0xffff);
    this.tw(5, 4, 0x1234_5678);
    this.tw(13, 2, 0xffff);
    this.tw(16, 8, 0xdead_beef_cafe_babfn);
    this.tw(28, 4, 0xffff_fffe);
    this.put('m-odd', [0, 16].map((e) => [0, 4, 8, 12].map((o) => hex(this.tr(e + o))).join(',')).join(';'));

    let past = 0;
    for (let off = 16 * nvec; off < 0x8000; off += 0x3f0 + 4) {
      this.tw(off, 4, 0xffff_ffff);
      past |= this.tr(off);
    }
    this.t.guest.write('mmio', this.pba, 4, 0xffff_ffffn);
    this.t.guest.write('mmio', this.pba + 4n, 4, 0xffff_ffffn);
    this.t.guest.write('mmio', this.pba + 3n, 1, 0xffn);
    this.put('m-past', `${hex(past >>> 0)},${hex((this.pr(0) | this.pr(4)) >>> 0)}`);

    this.entry(0, MSI_NOWHERE, MSI_DATA, 1);
    this.entry(1, 0x55000n, MSI_DATA, 1);
    this.setCtrl(0x8000);
    this.setup(0);
    this.readChain();
    this.publish(0);
    this.kick();
    const o1 = await this.outcome();
    const pend = this.pr(0);
    this.tw(12, 4, 0);
    await this.t.settle();
    this.put('m-pending', `${o1}:${pend.toString(16)}:${this.pr(0).toString(16)}`);

    this.setup(1);
    this.entry(1, 0x55000n, MSI_DATA, 0);
    this.readChain();
    this.publish(0);
    this.kick();
    const g1 = await this.outcome();
    this.entry(1, 0xdead_beef_0005_5000n, (0xffff_0000 | MSI_DATA) >>> 0, 0);
    this.readChain();
    this.publish(0);
    this.kick();
    this.put('m-garbage', `${g1}:${await this.outcome()}:${this.pr(0).toString(16)}`);

    this.setup(0);
    this.entry(0, MSI_NOWHERE, MSI_DATA, 0);
    for (let i = 0; i < 400; i++) {
      this.setCtrl(0x8000 | ((i & 1) << 14));
      this.tw(12, 4, i & 2 ? 1 : 0);
      if (i % 50 === 0) {
        this.readChain();
        this.publish(0);
        this.kick();
        await this.t.settle();
      }
    }
    this.setCtrl(0x8000);
    this.tw(12, 4, 0);
    for (let i = 0; i < 100; i++) this.setCtrl(i & 1 ? 0 : 0x8000);
    this.setCtrl(0x8000);
    await this.t.settle();
    this.put('m-storm', `${this.ctrl().toString(16)}:${this.pr(0).toString(16)}`);

    this.setup(NO_VECTOR);
    this.readChain();
    this.publish(0);
    this.kick();
    const nv = await this.outcome();
    this.put('m-novector', `${nv}:${this.cr(ISR, 1).toString(16)}`);

    this.setCtrl(0xc000);
    this.setup(0);
    this.cw(C.qsel, 2, 0);
    this.cw(C.qvec, 2, nvec + 3);
    this.put('m-qvec-past', hex(this.cr(C.qvec, 2), 4));
    this.setCtrl(0);
    this.reset();
    for (let i = 0; i < nvec; i++) this.entry(i, 0n, 0, 1);
  }

  private hotplugAttacks(): void {
    if (!this.hotplug) return this.put('h-storm', 'skipped');
    const g = this.t.guest;
    const h = this.hotplug;
    for (let i = 0; i < 1000; i++)
      g.write('mmio', h + 8n, 4, i & 1 ? 0xffff_ffff : ((1 << this.vslot) | (1 << this.wslot) | 0x8000_0000) >>> 0);
    for (let i = 0; i < 100; i++) g.write('mmio', h + 8n, 4, 0xffff_fff9);
    g.write('mmio', h + 0xcn, 4, 7);
    const seg = Number(g.read('mmio', h + 0xcn, 4));
    g.write('mmio', h + 8n, 4, 0xffff_ffff);
    g.write('mmio', h + 0xcn, 4, 0);
    g.write('mmio', h + 8n, 1, 0xff);
    g.write('mmio', h + 9n, 2, 0xffff);
    g.write('mmio', h + 2n, 4, 0xffff_ffff);
    const odd = Number(g.read('mmio', h + 1n, 1) | g.read('mmio', h + 2n, 2) | g.read('mmio', h + 6n, 4));
    const pseg = Number(g.read('mmio', h + 0xcn, 4));
    const b0ej = Number(g.read('mmio', h + 8n, 4));
    this.put(
      'h-storm',
      `seg:${seg.toString(16)} odd:${odd.toString(16)} pseg:${pseg.toString(16)} b0ej:${b0ej.toString(16)}`,
    );
  }

  private acpiAttacks(): void {
    if (!this.pm1) return this.put('a-pm1', 'no-fadt');
    const { evt, cnt } = this.pm1;
    const g = this.t.guest;
    const inw = (port: number): number => Number(g.read('pio', port, 2));
    const en = inw(evt + 2);
    const ctl = inw(cnt);
    for (let i = 0; i < 200; i++) {
      g.write('pio', evt, 2, 0xffff);
      g.write('pio', evt + 2, 2, (i * 0x9e37) & 0xffff);
      const typ = i % 8 === 5 ? 7 : i % 8;
      g.write('pio', cnt, 2, (1 << 13) | (typ << 10) | (i & 1));
      g.write('pio', evt + 1, 1, 0xff);
      g.write('pio', evt, 4, 0xffff_ffff);
      g.write('pio', cnt + 1 - (i & 1), 1, (i & 1 ? i : i & ~0x20) & 0xff);
    }
    g.write('pio', evt + 2, 2, en);
    g.write('pio', cnt, 2, ctl);
    const sts = inw(evt) & ~0x100;
    this.put('a-pm1', `en:${inw(evt + 2) === en ? 'kept' : 'lost'} ctl:${hex(inw(cnt), 4)} sts:${hex(sts, 4)}`);
  }

  /** Runs every attack in the program's order; the output as KEY -> VALUE. */
  async run(): Promise<Map<string, string>> {
    const lo = this.cfgRd(this.vslot, 0, 0x10, 4);
    const hi = this.cfgRd(this.vslot, 0, 0x14, 4);
    this.bar = (BigInt(hi) << 32n) | BigInt(lo & ~0xf);
    this.put('pci-ecam', `${this.t.ecam.toString(16)} segment:0 buses:0-0`);
    this.VW(0x04, 2, CMD_ON);
    this.cfgAttacks();
    await this.virtioAttacks();
    await this.msixAttacks();
    this.hotplugAttacks();
    this.acpiAttacks();
    await this.good('good-after', NO_VECTOR);
    this.reset();
    this.put('pci-done', '1');
    return this.out;
  }
}
