import { expect } from 'chai';
import type { PioFastPath, PioWriteMode } from '../../core/bus/fast-path.js';
import { I8042Controller } from './device.js';
import { Cmd, Status } from './registers.js';
import { I8042Driver } from './testing.js';

/** The command port's fast-path table as a runner keeps it (offset 0 = port 0x64). */
class StatusTable implements PioFastPath {
  value: number | undefined;
  mode: PioWriteMode = 'device';
  setReadValue(offset: number, value: number | undefined): void {
    expect(offset).to.equal(0);
    this.value = value;
  }
  setWriteMode(_offset: number, mode: PioWriteMode): void {
    this.mode = mode;
  }
}

/**
 * A controller whose status reads the vCPU thread answers from the table (each checked against the device's own
 * register at that moment), while data accesses and commands reach the device.
 */
function fastController() {
  const dev = new I8042Controller({ id: 'i8042', irq: () => {}, onResetRequest: () => {} });
  const table = new StatusTable();
  const handle = dev.commandPort.attachPioFastPath(table);
  let hops = 0;
  let fastReads = 0;
  const commandPort = {
    read: (o: bigint, d: Uint8Array) => {
      const truth = dev.readStatus();
      expect(table.value, 'the published status is the current one').to.equal(truth);
      fastReads++;
      d[0] = table.value!;
    },
    write: (o: bigint, d: Uint8Array) => {
      hops++;
      dev.commandPort.write(o, d);
    },
  };
  const dataPort = {
    read: (o: bigint, d: Uint8Array) => {
      hops++;
      dev.dataPort.read(o, d);
    },
    write: (o: bigint, d: Uint8Array) => {
      hops++;
      dev.dataPort.write(o, d);
    },
  };
  const drv = new I8042Driver({ commandPort, dataPort } as unknown as I8042Controller);
  return { dev, table, handle, drv, counts: () => ({ hops, fastReads }) };
}

describe('i8042: fast path', () => {
  it("answers Linux's status polls on the vCPU thread with the current status through a whole probe", () => {
    const { drv, table, counts } = fastController();
    expect(table.mode, 'no write is queued').to.equal('device');
    expect(drv.flush()).to.deep.equal([]);
    expect(drv.command(Cmd.SELF_TEST, undefined, 1)).to.deep.equal([0x55]);
    const [ctr] = drv.command(Cmd.READ_CTR, undefined, 1);
    drv.command(Cmd.WRITE_CTR, ctr);
    expect(drv.command(Cmd.KBD_TEST, undefined, 1)).to.deep.equal([0x00]);
    drv.writeData(0xf2); // keyboard GETID: ACK + 2 id bytes
    expect([drv.readData(), drv.readData(), drv.readData(), drv.readData()]).to.deep.equal([
      0xfa,
      0xab,
      0x83,
      undefined,
    ]);
    expect(drv.status() & Status.OBF).to.equal(0);
    const { hops, fastReads } = counts();
    expect(fastReads, 'status reads answered on the vCPU thread').to.be.greaterThan(0);
    expect(hops, 'the 6 command/data writes and 6 data reads only').to.equal(12);
  });

  it('publishes the status after a reset and a state load, and stops after dispose', () => {
    const { dev, table, handle, drv } = fastController();
    drv.writeData(0xf2);
    expect(table.value! & Status.OBF).to.equal(Status.OBF);
    const saved = dev.saveState();
    dev.reset();
    expect(table.value)
      .to.equal(dev.readStatus())
      .and.to.satisfy((s: number) => (s & Status.OBF) === 0);
    dev.loadState(saved);
    expect(table.value)
      .to.equal(dev.readStatus())
      .and.to.satisfy((s: number) => (s & Status.OBF) !== 0);
    handle.dispose();
    dev.reset();
    expect(table.value! & Status.OBF, 'no longer updated').to.equal(Status.OBF);
  });
});
