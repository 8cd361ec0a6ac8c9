import { expect } from 'chai';
import type { PioFastPath, PioWriteMode } from '../../core/bus/fast-path.js';
import { Uart16550 } from './device.js';
import { Fcr, Ier, Iir, Lcr, Lsr, Mcr, Reg } from './registers.js';
import { MemoryConsole, PortDriver, RecordingIrqLine } from './testing.js';

/** What a runner's fast-path table would hold for this UART. */
class RecordingFastPath implements PioFastPath {
  readonly reads = new Map<number, number>();
  readonly writes = new Map<number, PioWriteMode>();
  setReadValue(offset: number, value: number | undefined): void {
    if (value === undefined) this.reads.delete(offset);
    else this.reads.set(offset, value);
  }
  setWriteMode(offset: number, mode: PioWriteMode): void {
    this.writes.set(offset, mode);
  }
}

function makeUart() {
  const irq = new RecordingIrqLine();
  const console = new MemoryConsole();
  const uart = new Uart16550({ id: 'serial0', console, irq: irq.line });
  uart.activate();
  const fp = new RecordingFastPath();
  const handle = uart.attachPioFastPath(fp);
  return { uart, irq, console, io: new PortDriver(uart), fp, handle };
}

/**
 * A guest as the fast path runs it: THR writes the table says 'queue' are held and delivered
 * (through the same write()) only before the next access that reaches the device; LSR/MSR reads
 * with a published value never reach it.
 */
class FastGuest {
  readonly queued: [number, number][] = [];
  hops = 0;
  constructor(
    private readonly uart: Uart16550,
    private readonly fp: RecordingFastPath,
    private readonly io: PortDriver,
  ) {}
  private drain(): void {
    for (const [r, b] of this.queued.splice(0)) this.uart.write(BigInt(r), Uint8Array.of(b));
  }
  outb(reg: number, v: number): void {
    if (this.fp.writes.get(reg) === 'queue') {
      this.queued.push([reg, v]);
      return;
    }
    this.drain();
    this.hops++;
    this.io.outb(reg, v);
  }
  inb(reg: number): number {
    const v = this.fp.reads.get(reg);
    if (v !== undefined) return v;
    this.drain();
    this.hops++;
    return this.io.inb(reg);
  }
}

describe('serial: fast-path publication', () => {
  it('publishes THR as queued and LSR/MSR values at attach, and stops after dispose', () => {
    const { fp, io, handle } = makeUart();
    expect(fp.writes.get(Reg.DATA)).to.equal('queue');
    expect(fp.writes.get(Reg.IER)).to.equal('queue');
    expect(fp.reads.get(Reg.LSR)).to.equal(Lsr.THRE | Lsr.TEMT);
    expect(fp.reads.get(Reg.MSR)).to.equal(0xb0); // DCD|DSR|CTS, no deltas
    expect([...fp.reads.keys()].sort()).to.deep.equal([Reg.LSR, Reg.MSR]);
    handle.dispose();
    io.outb(Reg.LCR, Lcr.DLAB);
    expect(fp.writes.get(Reg.DATA), 'no longer updated').to.equal('queue');
  });

  it('sends THR writes to the device while DLAB is set or in loopback, IER writes while DLAB is set', () => {
    const { fp, io } = makeUart();
    io.outb(Reg.LCR, Lcr.DLAB | 0x03);
    expect(fp.writes.get(Reg.DATA)).to.equal('device');
    expect(fp.writes.get(Reg.IER), 'DLM').to.equal('device');
    io.outb(Reg.LCR, 0x03);
    expect(fp.writes.get(Reg.DATA)).to.equal('queue');
    expect(fp.writes.get(Reg.IER)).to.equal('queue');
    io.outb(Reg.MCR, Mcr.LOOP);
    expect(fp.writes.get(Reg.DATA)).to.equal('device');
    expect(fp.writes.get(Reg.IER), 'IER writes are the same in loopback').to.equal('queue');
    io.outb(Reg.MCR, 0);
    expect(fp.writes.get(Reg.DATA)).to.equal('queue');
  });

  it('withdraws LSR while a clear-on-read error is latched, and MSR while a delta is latched', () => {
    const { fp, io } = makeUart();
    io.outb(Reg.MCR, Mcr.LOOP); // FIFOs off: the RX holding register takes one byte
    expect(fp.reads.has(Reg.MSR), 'loopback changed the modem lines: deltas latched').to.equal(false);
    expect(io.inb(Reg.MSR) & 0x0f).to.not.equal(0);
    expect(fp.reads.has(Reg.MSR), 'read cleared them').to.equal(true);
    io.outb(Reg.DATA, 0x31);
    expect(fp.reads.get(Reg.LSR)).to.equal(Lsr.THRE | Lsr.TEMT | Lsr.DR);
    io.outb(Reg.DATA, 0x32); // overrun
    expect(fp.reads.has(Reg.LSR), 'OE latched: the read must reach the device').to.equal(false);
    expect(io.inb(Reg.LSR) & Lsr.OE).to.equal(Lsr.OE);
    expect(fp.reads.get(Reg.LSR), 'OE cleared by that read').to.equal(Lsr.THRE | Lsr.TEMT | Lsr.DR);
    expect(io.inb(Reg.DATA)).to.equal(0x31);
    expect(fp.reads.get(Reg.LSR)).to.equal(Lsr.THRE | Lsr.TEMT);
  });

  it('keeps LSR.DR current when console input arrives from the host side', () => {
    const { fp, console, io } = makeUart();
    console.type('x');
    expect(fp.reads.get(Reg.LSR)).to.equal(Lsr.THRE | Lsr.TEMT | Lsr.DR);
    expect(io.inb(Reg.DATA)).to.equal(0x78);
    expect(fp.reads.get(Reg.LSR)).to.equal(Lsr.THRE | Lsr.TEMT);
  });

  it('with IER.THRI on, queued TX leaves the UART exactly as direct writes do (8250 ISR pattern)', () => {
    const direct = makeUart();
    const fast = makeUart();
    const guest = new FastGuest(fast.uart, fast.fp, fast.io);
    const text = 'The quick brown fox jumps over the lazy dog, twice: the quick brown fox.';
    type Port = { outb(r: number, v: number): void; inb(r: number): number };
    const run = (p: Port): number[] => {
      const seen: number[] = [];
      p.outb(Reg.IIR_FCR, Fcr.ENABLE | Fcr.CLEAR_RX | Fcr.CLEAR_TX);
      p.outb(Reg.LCR, 0x03);
      p.outb(Reg.MCR, Mcr.OUT2 | Mcr.RTS | Mcr.DTR);
      p.outb(Reg.IER, Ier.RDI | Ier.THRI); // start_tx: THRE interrupt asserted
      let i = 0;
      for (let guard = 0; guard < 100 && i < text.length; guard++) {
        const iir = p.inb(Reg.IIR_FCR); // serial8250_handle_irq
        seen.push(iir);
        if ((iir & 0x0f) === Iir.NO_INT) break;
        seen.push(p.inb(Reg.LSR), p.inb(Reg.MSR));
        for (let n = 0; n < 16 && i < text.length; n++) p.outb(Reg.DATA, text.charCodeAt(i++)); // tx_chars
        if (i === text.length) p.outb(Reg.IER, Ier.RDI); // __stop_tx
      }
      seen.push(p.inb(Reg.IIR_FCR), p.inb(Reg.LSR));
      // serial8250_console_write (printk): save IER, mask it, poll LSR.THRE per byte, restore IER
      const ier = p.inb(Reg.IER);
      p.outb(Reg.IER, 0);
      for (const ch of 'printk line\r\n') {
        while (!(p.inb(Reg.LSR) & Lsr.THRE)) {
          /* wait_for_xmitr */
        }
        p.outb(Reg.DATA, ch.charCodeAt(0));
      }
      seen.push(p.inb(Reg.LSR));
      p.outb(Reg.IER, ier | Ier.THRI);
      seen.push(p.inb(Reg.IIR_FCR), p.inb(Reg.IIR_FCR), p.inb(Reg.IER));
      return seen;
    };
    expect(run(guest)).to.deep.equal(run(direct.io));
    expect(fast.console.text()).to.equal(text + 'printk line\r\n');
    expect(fast.uart.saveState()).to.deep.equal(direct.uart.saveState());
    expect(fast.irq.levels.at(-1)).to.equal(direct.irq.levels.at(-1));
    expect(fast.irq.risingEdges, 'as many rising edges').to.equal(direct.irq.risingEdges);
    expect(guest.hops, 'only IIR, IER reads and FCR/LCR/MCR writes reached the device').to.be.lessThan(16);
  });
});
