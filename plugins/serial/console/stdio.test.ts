import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PassThrough, Writable } from 'node:stream';
import { Uart16550 } from '../device.js';
import { Fcr, Lsr, Reg } from '../registers.js';
import { PortDriver, RecordingIrqLine } from '../testing.js';
import { StdioConsole } from './stdio.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(opts: { escape?: boolean; rxFifoSize?: number } = {}) {
  const input = new PassThrough();
  const output = new PassThrough();
  let quits = 0;
  const console = new StdioConsole({
    input,
    output,
    escape: opts.escape,
    onQuit: () => {
      quits++;
    },
  });
  const uart = new Uart16550({
    id: 'serial0',
    console,
    irq: new RecordingIrqLine().line,
    rxFifoSize: opts.rxFifoSize ?? 64,
  });
  const io = new PortDriver(uart);
  io.outb(Reg.IIR_FCR, Fcr.ENABLE);
  uart.activate();
  const drainGuest = (): number[] => {
    const got: number[] = [];
    while (io.inb(Reg.LSR) & Lsr.DR) got.push(io.inb(Reg.DATA));
    return got;
  };
  return { input, output, console, uart, io, drainGuest, quits: () => quits };
}

describe('serial: stdio console (stream pair, no TTY)', () => {
  it('sends guest output to the output stream in batches', async () => {
    const { io, output, uart } = setup();
    for (const c of Buffer.from('hello\r\n')) io.outb(Reg.DATA, c);
    await tick();
    expect(output.read()?.toString()).to.equal('hello\r\n');
    uart.destroy();
  });

  it('feeds input through the RX FIFO with backpressure, in order, without loss', async () => {
    const { input, uart, drainGuest } = setup({ rxFifoSize: 16 });
    const message = Buffer.from(Array.from({ length: 300 }, (_, i) => 0x20 + (i % 90)));
    input.write(message);
    await tick();
    expect(uart.rxLength, 'FIFO filled to its cap, the rest held back').to.equal(16);
    const got: number[] = [];
    for (let i = 0; i < 100 && got.length < message.length; i++) {
      got.push(...drainGuest());
      await tick();
    }
    expect(Buffer.from(got).equals(message)).to.equal(true);
    expect(uart.metrics.rxDropped).to.equal(0);
    uart.destroy();
  });

  it('Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, other keys pass', async () => {
    const { input, drainGuest, quits, uart } = setup({ escape: true });
    input.write(Buffer.from([0x61, 0x01, 0x01, 0x62, 0x01, 0x63]));
    await tick();
    expect(drainGuest()).to.deep.equal([0x61, 0x01, 0x62, 0x01, 0x63]);
    input.write(Buffer.from([0x01]));
    input.write(Buffer.from('x'));
    await tick();
    expect(quits()).to.equal(1);
    expect(drainGuest()).to.deep.equal([]);
    uart.destroy();
  });

  it('passes Ctrl-A through when the escape is off', async () => {
    const { input, drainGuest, quits, uart } = setup({ escape: false });
    input.write(Buffer.from([0x01, 0x78]));
    await tick();
    expect(drainGuest()).to.deep.equal([0x01, 0x78]);
    expect(quits()).to.equal(0);
    uart.destroy();
  });

  it('puts a terminal in raw mode and restores it on close', () => {
    const input = Object.assign(new PassThrough(), {
      isTTY: true,
      isRaw: false,
      modes: [] as boolean[],
      setRawMode(raw: boolean) {
        this.isRaw = raw;
        this.modes.push(raw);
        return this;
      },
    });
    const console = new StdioConsole({ input, output: new PassThrough() });
    const uart = new Uart16550({ id: 's', console, irq: () => {} });
    uart.activate();
    expect(input.isRaw).to.equal(true);
    uart.destroy();
    expect(input.modes).to.deep.equal([true, false]);
  });

  it('drops (and counts) output once the stream holds too much', async () => {
    let dropped = 0;
    // A stuck destination: nothing it is given ever completes.
    const output = new Writable({
      write(_chunk, _enc, _cb) {
        /* never done */
      },
    });
    const console = new StdioConsole({
      input: new PassThrough(),
      output,
      maxQueued: 8,
      dropped: (n) => {
        dropped += n;
      },
    });
    for (let i = 0; i < 4096 * 3; i++) console.transmit(0x41);
    await tick();
    expect(dropped).to.be.greaterThan(0);
    expect(output.writableLength + dropped).to.equal(4096 * 3);
    expect(output.writableLength).to.equal(4096);
    console.close();
  });
});

describe('serial: stdio console on a real terminal', () => {
  // `script` (bsdutils, an essential Debian package) gives the child a pty as its stdout.
  it('queues terminal writes while it runs (a stalled terminal cannot block the VMM), blocks again on close', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stdio-tty-'));
    try {
      const here = dirname(fileURLToPath(import.meta.url));
      const url = (rel: string): string => pathToFileURL(join(here, rel)).href;
      const child = join(dir, 'child.mjs');
      const out = join(dir, 'out.json');
      writeFileSync(
        child,
        [
          `import { PassThrough } from 'node:stream';`,
          `import { writeFileSync } from 'node:fs';`,
          `import { StdioConsole } from ${JSON.stringify(url('stdio.js'))};`,
          `import { c, O_NONBLOCK } from ${JSON.stringify(url('../../../core/native/libc.js'))};`,
          `const nonBlocking = () => (Number(c.fcntl(1, 3 /* F_GETFL */, 0)) & O_NONBLOCK) !== 0;`,
          `const before = nonBlocking();`,
          `const con = new StdioConsole({ input: new PassThrough(), escape: false });`,
          `con.connect({ receive: () => 0, onRxSpace: () => {} });`,
          `const running = nonBlocking();`,
          `con.close();`,
          `const seen = { tty: process.stdout.isTTY, before, running, after: nonBlocking() };`,
          `writeFileSync(${JSON.stringify(out)}, JSON.stringify(seen));`,
        ].join('\n'),
      );
      const r = spawnSync('script', ['-qec', `${process.execPath} ${child}`, '/dev/null'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
      const seen = JSON.parse(readFileSync(out, 'utf8')) as Record<string, boolean>;
      expect(seen).to.deep.equal({ tty: true, before: false, running: true, after: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
