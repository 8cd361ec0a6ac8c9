import { expect } from 'chai';
import { Uart16550 } from './device.js';
import { Fcr, Ier, Iir, Lcr, Lsr, Mcr, Reg } from './registers.js';
import { PortDriver, uartTestBed } from './testing.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

const makeUart = uartTestBed;

describe('serial: Uart16550', () => {
  describe('Linux 8250 autoconfig probe', () => {
    it('passes the IER read-back test and keeps the XScale UUE bit clear', () => {
      const { io } = makeUart();
      io.outb(Reg.IER, 0);
      expect(io.inb(Reg.IER) & 0x0f).to.equal(0);
      io.outb(Reg.IER, 0x0f);
      expect(io.inb(Reg.IER) & 0x0f).to.equal(0x0f);
      io.outb(Reg.IER, 0x4f);
      expect(io.inb(Reg.IER) & 0x40, 'UUE must not stick (else Linux takes it for an XScale UART)').to.equal(0);
    });

    it('keeps the scratch register', () => {
      const { io } = makeUart();
      io.outb(Reg.SCR, 0xa5);
      expect(io.inb(Reg.SCR)).to.equal(0xa5);
      io.outb(Reg.SCR, 0x5a);
      expect(io.inb(Reg.SCR)).to.equal(0x5a);
    });

    it('answers the loopback modem test with 0x90 (MCR LOOP|OUT2|RTS -> MSR DCD|CTS)', () => {
      const { io } = makeUart();
      io.outb(Reg.MCR, Mcr.LOOP | 0x0a);
      expect(io.inb(Reg.MSR) & 0xf0).to.equal(0x90);
      io.outb(Reg.MCR, Mcr.LOOP | Mcr.DTR | Mcr.OUT1);
      expect(io.inb(Reg.MSR) & 0xf0).to.equal(0x60);
      io.outb(Reg.MCR, Mcr.OUT2);
      expect(io.inb(Reg.MSR) & 0xf0, 'outside loopback: DCD|DSR|CTS').to.equal(0xb0);
    });

    it('identifies as a 16550A: IIR bits 6-7 read 11 once FIFOs are enabled, 00 when off', () => {
      const { io } = makeUart();
      expect(io.inb(Reg.IIR_FCR) >> 6).to.equal(0);
      io.outb(Reg.IIR_FCR, Fcr.ENABLE);
      expect(io.inb(Reg.IIR_FCR) >> 6).to.equal(3);
      io.outb(Reg.IIR_FCR, 0);
      expect(io.inb(Reg.IIR_FCR) >> 6).to.equal(0);
    });

    it('latches the divisor under DLAB without touching RBR/IER', () => {
      const { io } = makeUart();
      io.outb(Reg.IER, Ier.RDI);
      io.outb(Reg.LCR, Lcr.DLAB | 0x03);
      io.outb(Reg.DATA, 0x01);
      io.outb(Reg.IER, 0x00);
      expect(io.inb(Reg.DATA)).to.equal(0x01);
      expect(io.inb(Reg.IER)).to.equal(0x00);
      io.outb(Reg.LCR, 0x03);
      expect(io.inb(Reg.LCR)).to.equal(0x03);
      expect(io.inb(Reg.IER)).to.equal(Ier.RDI);
    });
  });

  describe('THRE interrupt', () => {
    it('passes serial8250_do_startup THRE and TXEN tests (IIR reports THRI each time THRI is enabled)', () => {
      const { io, irq } = makeUart();
      expect(io.inb(Reg.LSR) & Lsr.THRE).to.not.equal(0);
      io.outb(Reg.IER, Ier.THRI);
      const iir1 = io.inb(Reg.IIR_FCR);
      io.outb(Reg.IER, 0);
      io.outb(Reg.IER, Ier.THRI);
      const iir = io.inb(Reg.IIR_FCR);
      io.outb(Reg.IER, 0);
      expect(iir1 & Iir.NO_INT, 'iir1 shows an interrupt').to.equal(0);
      expect(iir & Iir.NO_INT, 'THRE re-asserted (else Linux sets UART_BUG_THRE)').to.equal(0);
      expect(iir1 & 0x0f).to.equal(Iir.THRI);
      // TXEN test
      io.outb(Reg.IER, Ier.THRI);
      const lsr = io.inb(Reg.LSR);
      const iir2 = io.inb(Reg.IIR_FCR);
      io.outb(Reg.IER, 0);
      expect(lsr & Lsr.TEMT).to.not.equal(0);
      expect(iir2 & Iir.NO_INT, 'else Linux sets UART_BUG_TXEN').to.equal(0);
      expect(irq.level).to.equal(false);
      expect(irq.risingEdges).to.equal(3);
    });

    it('raises the line when THRI is enabled with THR empty, drops it on the IIR read, re-raises after each THR write', () => {
      const { io, irq, console } = makeUart();
      io.outb(Reg.IER, Ier.THRI);
      expect(irq.level).to.equal(true);
      expect(io.inb(Reg.IIR_FCR) & 0x0f).to.equal(Iir.THRI);
      expect(irq.level).to.equal(false);
      expect(io.inb(Reg.IIR_FCR) & 0x0f, 'cleared by the read').to.equal(Iir.NO_INT);
      io.outb(Reg.DATA, 0x41);
      expect(console.text()).to.equal('A');
      expect(irq.level, 'THR empty again').to.equal(true);
      io.outb(Reg.IER, 0);
      expect(irq.level).to.equal(false);
    });

    it('transmits without interrupts when IER is 0 (console polling)', () => {
      const { io, irq, console } = makeUart();
      for (const c of Buffer.from('Linux version')) {
        expect(io.inb(Reg.LSR) & Lsr.THRE).to.not.equal(0);
        io.outb(Reg.DATA, c);
      }
      expect(console.text()).to.equal('Linux version');
      expect(irq.levels).to.deep.equal([]);
    });
  });

  describe('receiver', () => {
    it('raises RDA, sets LSR.DR, and reads bytes in order', () => {
      const { io, irq, console } = makeUart();
      io.outb(Reg.IIR_FCR, Fcr.ENABLE | 0x80); // trigger level 8
      io.outb(Reg.IER, Ier.RDI);
      expect(console.type('hi')).to.equal(2);
      expect(irq.level).to.equal(true);
      expect(io.inb(Reg.IIR_FCR) & 0x0f, 'below the trigger: character timeout').to.equal(Iir.RX_TIMEOUT);
      expect(io.inb(Reg.LSR) & Lsr.DR).to.equal(Lsr.DR);
      expect(io.inb(Reg.DATA)).to.equal(0x68);
      expect(io.inb(Reg.DATA)).to.equal(0x69);
      expect(io.inb(Reg.LSR) & Lsr.DR).to.equal(0);
      expect(irq.level).to.equal(false);
      console.type('12345678');
      expect(io.inb(Reg.IIR_FCR) & 0x0f, 'at the trigger level: RDA').to.equal(Iir.RDI);
    });

    it('caps the FIFO: takes only what fits and reports the rest as refused', () => {
      const { io, uart, console } = makeUart(16);
      io.outb(Reg.IIR_FCR, Fcr.ENABLE);
      expect(console.type('x'.repeat(40))).to.equal(16);
      expect(uart.rxLength).to.equal(16);
      expect(console.type('y')).to.equal(0);
      io.inb(Reg.DATA);
      expect(console.type('yy')).to.equal(1);
      io.outb(Reg.IIR_FCR, 0);
      expect(uart.rxLength, 'disabling FIFOs clears them').to.equal(0);
      expect(console.type('ab'), 'without FIFOs the receiver holds one byte').to.equal(1);
    });

    it('counts overruns in loopback and reports them as a line status interrupt', () => {
      const { io, uart, irq } = makeUart(4);
      io.outb(Reg.IIR_FCR, Fcr.ENABLE);
      io.outb(Reg.MCR, Mcr.LOOP);
      io.outb(Reg.IER, Ier.RLSI);
      for (let i = 0; i < 6; i++) io.outb(Reg.DATA, 0x30 + i);
      expect(uart.metrics.rxDropped).to.equal(2);
      expect(irq.level).to.equal(true);
      expect(io.inb(Reg.IIR_FCR) & 0x0f).to.equal(Iir.RLSI);
      expect(io.inb(Reg.LSR) & Lsr.OE).to.equal(Lsr.OE);
      expect(io.inb(Reg.LSR) & Lsr.OE, 'cleared by reading LSR').to.equal(0);
      expect(irq.level).to.equal(false);
      expect([0, 1, 2, 3].map(() => io.inb(Reg.DATA))).to.deep.equal([0x30, 0x31, 0x32, 0x33]);
    });

    it('loops THR back to RBR in loopback without sending to the console, and refuses console input meanwhile', () => {
      const { io, console } = makeUart();
      io.outb(Reg.MCR, Mcr.LOOP);
      io.outb(Reg.DATA, 0x55);
      expect(console.output).to.deep.equal([]);
      expect(console.type('z')).to.equal(0);
      expect(io.inb(Reg.DATA)).to.equal(0x55);
      io.outb(Reg.MCR, 0);
      expect(console.type('z')).to.equal(1);
    });

    it('wakes a waiting backend on the next loop turn once the guest makes room', async () => {
      const { io, uart, console } = makeUart(2);
      io.outb(Reg.IIR_FCR, Fcr.ENABLE);
      console.type('ab');
      let woken = 0;
      uart.onRxSpace(() => {
        woken++;
      });
      await tick();
      expect(woken, 'no room yet').to.equal(0);
      io.inb(Reg.DATA);
      expect(woken, 'never inside the guest access').to.equal(0);
      await tick();
      expect(woken).to.equal(1);
    });
  });

  describe('interrupt priorities and modem status', () => {
    it('orders RLS > RDA > THRE > MSR', () => {
      const { io } = makeUart(1);
      io.outb(Reg.MCR, Mcr.LOOP);
      io.outb(Reg.IER, Ier.MASK);
      io.outb(Reg.DATA, 1);
      io.outb(Reg.DATA, 2); // overrun
      io.outb(Reg.MCR, Mcr.LOOP | Mcr.RTS); // CTS changes: MSR delta
      expect(io.inb(Reg.IIR_FCR) & 0x0f).to.equal(Iir.RLSI);
      io.inb(Reg.LSR);
      expect(io.inb(Reg.IIR_FCR) & 0x0f).to.equal(Iir.RDI);
      io.inb(Reg.DATA);
      expect(io.inb(Reg.IIR_FCR) & 0x0f).to.equal(Iir.THRI);
      expect(io.inb(Reg.IIR_FCR) & 0x0f).to.equal(Iir.MSI);
      expect(io.inb(Reg.MSR) & 0x0f, 'entering loopback dropped CTS/DSR/DCD, then RTS raised CTS').to.equal(0x0b);
      expect(io.inb(Reg.IIR_FCR) & 0x0f).to.equal(Iir.NO_INT);
    });
  });

  describe('edge-triggered irqchip (KVM IOAPIC/PIC with ISA lines)', () => {
    it('loses no work when an ISR in the style of Linux 8250 runs once per rising edge', () => {
      const { io, irq, console, uart } = makeUart(16);
      const txQueue = [...Buffer.from('the quick brown fox jumps over the lazy dog, twice: the quick brown fox')];
      const received: number[] = [];
      let ier = 0;
      const startTx = (): void => {
        ier |= Ier.THRI;
        io.outb(Reg.IER, ier);
      };
      // The driver's ISR: loop until IIR says nothing is pending.
      const isr = (): void => {
        for (let guard = 0; guard < 1000; guard++) {
          const iir = io.inb(Reg.IIR_FCR);
          if (iir & Iir.NO_INT) return;
          let lsr = io.inb(Reg.LSR);
          while (lsr & Lsr.DR) {
            received.push(io.inb(Reg.DATA));
            lsr = io.inb(Reg.LSR);
          }
          if (lsr & Lsr.THRE && ier & Ier.THRI) {
            if (txQueue.length === 0) {
              ier &= ~Ier.THRI;
              io.outb(Reg.IER, ier);
              continue;
            }
            for (let n = 0; n < 16 && txQueue.length; n++) io.outb(Reg.DATA, txQueue.shift() as number);
          }
        }
        throw new Error('ISR did not finish');
      };
      io.outb(Reg.IIR_FCR, Fcr.ENABLE | 0x80);
      ier = Ier.RDI;
      io.outb(Reg.IER, ier);
      const input = [...Buffer.from('some keyboard input arriving in pieces')];
      let edgesSeen = 0;
      startTx();
      for (let round = 0; round < 200 && (irq.risingEdges > edgesSeen || input.length); round++) {
        if (irq.risingEdges > edgesSeen) {
          edgesSeen = irq.risingEdges;
          isr();
        }
        // Input arrives between (and, through the edge latch, during) interrupts.
        if (input.length) console.type(Uint8Array.from(input.splice(0, 5)));
      }
      expect(console.text()).to.equal('the quick brown fox jumps over the lazy dog, twice: the quick brown fox');
      expect(Buffer.from(received).toString()).to.equal('some keyboard input arriving in pieces');
      expect(irq.level, 'line low once the ISR is done').to.equal(false);
      expect(uart.rxLength).to.equal(0);
    });
  });

  describe('hostile accesses', () => {
    it('splits wide accesses into byte accesses and never throws', () => {
      const { io, uart, console } = makeUart();
      io.out(Reg.LCR, [0x03, 0x0b, 0xff, 0xff]); // LCR, MCR, LSR (ignored), MSR (ignored)
      expect(io.inb(Reg.LCR)).to.equal(0x03);
      expect(io.inb(Reg.MCR)).to.equal(0x0b);
      const wide = io.in(Reg.DATA, 8);
      expect(wide[Reg.LCR]).to.equal(0x03);
      expect(io.in(6, 4)[2], 'past the registers').to.equal(0xff);
      io.out(6, [0, 0x77, 0x99, 0x99]);
      expect(io.inb(Reg.SCR)).to.equal(0x77);
      expect(uart.metrics.oddAccesses).to.be.greaterThan(0);
      expect(() => uart.write(0xffff_ffff_ffffn, Uint8Array.of(1))).to.not.throw();
      expect(() => uart.read(-1n, new Uint8Array(2))).to.not.throw();
      expect(console.output).to.deep.equal([]);
    });

    it('survives a throwing interrupt line and console', () => {
      const uart = new Uart16550({
        id: 's',
        irq: () => {
          throw new Error('irqchip gone');
        },
        console: {
          kind: 'bad',
          transmit: () => {
            throw new Error('disk full');
          },
          connect: () => {},
          close: () => {},
        },
      });
      const io = new PortDriver(uart);
      expect(() => {
        io.outb(Reg.IER, Ier.THRI);
        io.outb(Reg.DATA, 0x41);
      }).to.not.throw();
      expect(uart.metrics.irqErrors).to.equal(1);
      expect(uart.metrics.txDropped).to.equal(1);
    });
  });

  describe('reset', () => {
    it('reset returns to power-on state and drops the line', () => {
      const { uart, io, irq } = makeUart();
      io.outb(Reg.IER, Ier.THRI);
      io.outb(Reg.SCR, 1);
      expect(irq.level).to.equal(true);
      uart.reset();
      expect(irq.level).to.equal(false);
      expect(io.inb(Reg.IER)).to.equal(0);
      expect(io.inb(Reg.SCR)).to.equal(0);
      expect(io.inb(Reg.IIR_FCR)).to.equal(Iir.NO_INT);
      expect(io.inb(Reg.LSR)).to.equal(Lsr.THRE | Lsr.TEMT);
    });

    it('destroy closes the console once', () => {
      const { uart, console } = makeUart();
      uart.destroy();
      uart.destroy();
      expect(console.closed).to.equal(true);
      expect(uart.receive(Uint8Array.of(1))).to.equal(0);
    });
  });
});

describe('serial: counters (contract C4)', () => {
  it('reports the bytes the guest sent through counters()', () => {
    const { io, uart } = makeUart();
    io.outb(Reg.DATA, 0x41);
    io.outb(Reg.DATA, 0x42);
    expect(uart.counters().txBytes).to.equal(2);
  });
});
