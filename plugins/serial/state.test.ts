import { expect } from 'chai';
import { StateError } from '../../core/state/errors.js';
import { restoreSnapshot, takeSnapshot } from '../../core/state/persist.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { Fcr, Ier, Lcr, Reg } from './registers.js';
import { uartTestBed } from './testing.js';

const makeUart = uartTestBed;

describe('serial: state', () => {
  it('round-trips registers and FIFO contents; pending RX bytes are delivered after restore', () => {
    const a = makeUart();
    a.io.outb(Reg.LCR, Lcr.DLAB);
    a.io.outb(Reg.DATA, 0x03);
    a.io.outb(Reg.LCR, 0x03);
    a.io.outb(Reg.IIR_FCR, Fcr.ENABLE | 0x40);
    a.io.outb(Reg.SCR, 0x99);
    a.io.outb(Reg.IER, Ier.RDI);
    a.console.type('abc');

    const b = makeUart();
    const { first, second } = roundTripState(a.uart, b.uart);
    expect(second).to.deep.equal(first);
    expect(first.id).to.equal('serial0');
    expect(b.irq.level, 'restored pending RX drives the line').to.equal(true);
    expect(b.io.inb(Reg.SCR)).to.equal(0x99);
    expect([b.io.inb(Reg.DATA), b.io.inb(Reg.DATA), b.io.inb(Reg.DATA)]).to.deep.equal([0x61, 0x62, 0x63]);
    expect(b.irq.level, 'the FIFO drained: the line drops').to.equal(false);
    b.console.type('d');
    expect(b.io.inb(Reg.DATA), 'input keeps flowing after restore').to.equal(0x64);
  });

  it('refuses hostile state and keeps its own', () => {
    const { uart, io } = makeUart(4);
    io.outb(Reg.SCR, 7);
    const good = takeSnapshot(uart);
    const problems = hostileStateProblems(uart, [
      withData(good, (d) => ({ ...d, ier: 0x1ff })),
      withData(good, (d) => ({ ...d, fifoEnabled: true, rxFifo: [1, 2, 3, 4, 5] })),
      withData(good, (d) => ({ ...d, fifoEnabled: false, rxFifo: [1, 2] })),
      withData(good, (d) => ({ ...d, rxTrigger: 3 })),
      withData(good, (d) => ({ ...d, rxFifo: [256] })),
      withData(good, (d) => ({ ...d, extra: 1 })),
      { ...good, version: 2 },
      { ...good, id: 'serial1' },
      null,
    ]);
    expect(problems).to.deep.equal([]);
    expect(() =>
      restoreSnapshot(
        uart,
        withData(good, (d) => ({ ...d, fifoEnabled: true, rxFifo: [1, 2, 3, 4, 5] })),
      ),
    )
      .to.throw(StateError)
      .with.property(
        'message',
        "serial0: saved 16550A UART state does not fit: it holds 5 RX bytes, more than the FIFO's 4",
      );
    expect(io.inb(Reg.SCR)).to.equal(7);
  });
});
