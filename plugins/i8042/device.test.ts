import { expect } from 'chai';
import { I8042Controller } from './device.js';
import { Cmd, Ctr, Status } from './registers.js';
import { I8042Driver, i8042TestBed } from './testing.js';

const make = i8042TestBed;

describe('i8042: controller', () => {
  it('passes the controller self-test (0xAA -> 0x55) and keyboard interface test (0xAB -> 0x00)', () => {
    const { drv } = make();
    expect(drv.flush()).to.deep.equal([]);
    expect(drv.command(Cmd.SELF_TEST, undefined, 1)).to.deep.equal([0x55]);
    expect(drv.status() & Status.SYS).to.equal(Status.SYS);
    expect(drv.command(Cmd.KBD_TEST, undefined, 1)).to.deep.equal([0x00]);
    expect(drv.status() & Status.OBF).to.equal(0);
    expect(drv.status() & Status.IBF, 'input buffer never full').to.equal(0);
  });

  it('reads and writes the command byte, and reflects disable/enable of kbd and aux', () => {
    const { drv } = make();
    const [ctr] = drv.command(Cmd.READ_CTR, undefined, 1);
    expect(ctr).to.equal(Ctr.KBDINT | Ctr.SYS);
    drv.command(Cmd.WRITE_CTR, 0x65);
    expect(drv.status() & Status.CMD, 'last write was data').to.equal(0);
    expect(drv.command(Cmd.READ_CTR, undefined, 1)).to.deep.equal([0x65]);
    expect(drv.status() & Status.CMD).to.equal(Status.CMD);
    drv.command(Cmd.KBD_ENABLE);
    drv.command(Cmd.AUX_ENABLE);
    expect(drv.command(Cmd.READ_CTR, undefined, 1)[0]! & (Ctr.KBDDIS | Ctr.AUXDIS)).to.equal(0);
    drv.command(Cmd.KBD_DISABLE);
    drv.command(Cmd.AUX_DISABLE);
    expect(drv.command(Cmd.READ_CTR, undefined, 1)[0]! & (Ctr.KBDDIS | Ctr.AUXDIS)).to.equal(Ctr.KBDDIS | Ctr.AUXDIS);
  });

  it('makes Linux conclude "no aux port" without a timeout', () => {
    const { drv } = make();
    // i8042_check_aux: AUX_LOOP with 0x5a must come back flagged AUXDATA for an aux port to exist.
    drv.command(Cmd.WRITE_AUX_OUT, 0x5a);
    expect(drv.status() & Status.OBF, 'answered at once').to.equal(Status.OBF);
    expect(drv.status() & Status.AUXDATA, 'not flagged as aux data: the driver reports auxerr').to.equal(0);
    // Then AUX_TEST: a non-zero result other than 0xfa/0xff means no aux device.
    const [r] = drv.command(Cmd.AUX_TEST, undefined, 1);
    expect(r).to.not.equal(undefined);
    expect(r !== 0 && r !== 0xfa && r !== 0xff).to.equal(true);
  });

  it('asks for a CPU reset on 0xFE and on pulses or output-port writes that drop the reset line', () => {
    const { drv, resets, dev } = make();
    drv.writeCommand(Cmd.RESET_CPU);
    expect(resets()).to.equal(1);
    drv.writeCommand(0xff); // pulse nothing
    expect(resets()).to.equal(1);
    drv.writeCommand(0xf0); // pulse all four lines, reset included
    expect(resets()).to.equal(2);
    drv.command(Cmd.WRITE_OUTPUT, 0x03);
    expect(resets()).to.equal(2);
    expect(drv.command(Cmd.READ_OUTPUT, undefined, 1)).to.deep.equal([0x03]);
    drv.command(Cmd.WRITE_OUTPUT, 0x02);
    expect(resets()).to.equal(3);
    expect(dev.metrics.resetRequests).to.equal(3);
  });

  it('contains a throwing reset handler', () => {
    const dev = new I8042Controller({
      id: 'k',
      irq: () => {},
      onResetRequest: () => {
        throw new Error('boom');
      },
    });
    expect(() => new I8042Driver(dev).writeCommand(Cmd.RESET_CPU)).to.not.throw();
  });

  describe('keyboard', () => {
    it('answers atkbd probing at once: GETID, reset, LEDs, scan set, echo, unknown -> RESEND', () => {
      const { drv, dev } = make();
      drv.writeData(0xf2);
      expect(drv.flush()).to.deep.equal([0xfa, 0xab, 0x83]);
      drv.writeData(0xff);
      expect(drv.flush()).to.deep.equal([0xfa, 0xaa]);
      drv.writeData(0xed);
      drv.writeData(0x07);
      expect(drv.flush()).to.deep.equal([0xfa, 0xfa]);
      drv.writeData(0xf0);
      drv.writeData(0x00);
      expect(drv.flush()).to.deep.equal([0xfa, 0xfa, 0x02]);
      drv.writeData(0xee);
      drv.writeData(0xf4);
      expect(drv.flush()).to.deep.equal([0xee, 0xfa]);
      drv.writeData(0x12);
      expect(drv.flush()).to.deep.equal([0xfe]);
      expect(dev.metrics.unknownKeyboardCommands).to.equal(1);
    });

    it('raises IRQ 1 once per byte while CTR.KBDINT is set, and not when it is clear', () => {
      const { drv, irq } = make();
      drv.writeData(0xf2);
      expect(irq.level).to.equal(true);
      drv.readData();
      drv.readData();
      drv.readData();
      expect(irq.level).to.equal(false);
      expect(irq.risingEdges, 'one edge per byte for an edge-triggered irqchip').to.equal(3);
      drv.command(Cmd.WRITE_CTR, Ctr.SYS);
      drv.writeData(0xee);
      expect(irq.level).to.equal(false);
      drv.command(Cmd.WRITE_CTR, Ctr.SYS | Ctr.KBDINT);
      expect(irq.level, 'enabling with a byte waiting raises the line').to.equal(true);
    });
  });

  describe('hostile guest', () => {
    it('ignores unknown commands, caps the output queue, and handles odd access sizes', () => {
      const { drv, dev } = make();
      drv.writeCommand(0x05);
      drv.writeCommand(0xc9);
      expect(dev.metrics.unknownCommands).to.equal(2);
      for (let i = 0; i < 40; i++) drv.writeData(0xee);
      expect(drv.flush()).to.have.length(16);
      expect(dev.metrics.outputDropped).to.equal(24);
      const wide = new Uint8Array(4);
      expect(() => dev.commandPort.read(0n, wide)).to.not.throw();
      expect(wide[0] & Status.UNLOCKED).to.equal(Status.UNLOCKED);
      expect([...wide.subarray(1)]).to.deep.equal([0xff, 0xff, 0xff]);
      expect(() => dev.dataPort.write(0n, new Uint8Array(0))).to.not.throw();
      expect(drv.readData(), 'empty buffer').to.equal(undefined);
      const d = new Uint8Array(1);
      dev.dataPort.read(0n, d);
      expect(d[0]).to.equal(0);
    });

    it('a stale unread byte does not confuse the next command reply', () => {
      const { drv } = make();
      drv.writeData(0xee);
      expect(drv.command(Cmd.READ_CTR, undefined, 1)).to.deep.equal([Ctr.KBDINT | Ctr.SYS]);
      expect(drv.flush()).to.deep.equal([]);
    });
  });

  describe('state', () => {
    it('reset restores power-on defaults', () => {
      const { dev, drv, irq } = make();
      drv.command(Cmd.WRITE_CTR, 0x00);
      drv.command(Cmd.WRITE_CTR, Ctr.KBDINT);
      drv.writeData(0xee);
      expect(irq.level).to.equal(true);
      dev.reset();
      expect(irq.level).to.equal(false);
      expect(drv.command(Cmd.READ_CTR, undefined, 1)).to.deep.equal([Ctr.KBDINT | Ctr.SYS]);
    });
  });
});
