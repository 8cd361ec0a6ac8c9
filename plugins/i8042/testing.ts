import { RecordingIrqLine } from '../serial/testing.js';
import { I8042Controller } from './device.js';
import { Status } from './registers.js';

/**
 * The guest side of an i8042, polling like Linux's i8042_command(): write a
 * command (and its parameter), then read as many bytes as the command returns.
 */
export class I8042Driver {
  constructor(private readonly dev: I8042Controller) {}

  status(): number {
    const d = new Uint8Array(1);
    this.dev.commandPort.read(0n, d);
    return d[0];
  }

  /** Reads port 0x60 if a byte waits (OBF), else undefined (what a timeout would be). */
  readData(): number | undefined {
    if (!(this.status() & Status.OBF)) return undefined;
    const d = new Uint8Array(1);
    this.dev.dataPort.read(0n, d);
    return d[0];
  }

  writeCommand(cmd: number): void {
    this.dev.commandPort.write(0n, Uint8Array.of(cmd));
  }
  writeData(v: number): void {
    this.dev.dataPort.write(0n, Uint8Array.of(v));
  }

  /** Sends `cmd` (+ param) and collects `replies` bytes; missing bytes come back as undefined. */
  command(cmd: number, param?: number, replies = 0): Array<number | undefined> {
    this.writeCommand(cmd);
    if (param !== undefined) this.writeData(param);
    return Array.from({ length: replies }, () => this.readData());
  }

  /** Empties the output buffer as i8042_flush() does; returns what it read. */
  flush(): number[] {
    const out: number[] = [];
    for (let i = 0; i < 32; i++) {
      const b = this.readData();
      if (b === undefined) break;
      out.push(b);
    }
    return out;
  }
}

/** A controller 'i8042' with a recording irq line, a driver, and a count of reset requests (unit tests). */
export function i8042TestBed() {
  const irq = new RecordingIrqLine();
  let resets = 0;
  const dev = new I8042Controller({
    id: 'i8042',
    irq: irq.line,
    onResetRequest: () => {
      resets++;
    },
  });
  return { dev, irq, drv: new I8042Driver(dev), resets: () => resets };
}
