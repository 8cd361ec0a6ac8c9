import { expect } from 'chai';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Uart16550 } from '../device.js';
import { Fcr, Lsr, Reg } from '../registers.js';
import { PortDriver } from '../testing.js';
import { UnixSocketConsole } from './unix-socket.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const connect = (p: string): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const s = net.createConnection(p, () => resolve(s));
    s.once('error', reject);
  });
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(cond(), 'condition reached').to.equal(true);
}

describe('serial: unix-socket console', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvmm-serial-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gives the first client input and output, turns others away, and cleans up', async () => {
    const sockPath = path.join(dir, 'console.sock');
    let dropped = 0;
    const console = new UnixSocketConsole(sockPath, {
      dropped: (n) => {
        dropped += n;
      },
    });
    await console.listen();
    const uart = new Uart16550({ id: 's', console, irq: () => {} });
    const io = new PortDriver(uart);
    io.outb(Reg.IIR_FCR, Fcr.ENABLE);
    uart.activate();

    io.outb(Reg.DATA, 0x21); // nobody connected yet
    await tick();
    expect(dropped).to.equal(1);

    const client = await connect(sockPath);
    await until(() => console.connected);
    const second = await connect(sockPath);
    const busy = await new Promise<string>((r) => {
      let s = '';
      second.on('data', (d) => {
        s += d;
      });
      second.on('end', () => r(s));
    });
    expect(busy).to.match(/busy/);

    let fromGuest = '';
    client.on('data', (d) => {
      fromGuest += d.toString();
    });
    for (const c of Buffer.from('login: ')) io.outb(Reg.DATA, c);
    await until(() => fromGuest === 'login: ');

    client.write('root\n');
    const got: number[] = [];
    await until(() => {
      while (io.inb(Reg.LSR) & Lsr.DR) got.push(io.inb(Reg.DATA));
      return got.length === 5;
    });
    expect(Buffer.from(got).toString()).to.equal('root\n');

    client.destroy();
    await until(() => !console.connected);
    uart.destroy();
    expect(fs.existsSync(sockPath)).to.equal(false);
  });

  it('delivers every byte transmitted before close to the client, then ends the connection', async () => {
    const sockPath = path.join(dir, 'console.sock');
    const console = new UnixSocketConsole(sockPath, { maxQueued: 1 << 20 });
    await console.listen();
    const client = await connect(sockPath);
    await until(() => console.connected);
    const chunks: Buffer[] = [];
    client.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise<void>((r) => client.once('end', () => r()));
    const sent = Buffer.alloc(256 * 1024);
    for (let i = 0; i < sent.length; i++) sent[i] = (i * 7 + (i >> 9)) & 0xff;
    for (const b of sent) console.transmit(b);
    console.close(); // the VM stopped: nothing more comes, but nothing already sent is lost
    await ended;
    expect(Buffer.concat(chunks).equals(sent)).to.equal(true);
    client.destroy();
  });

  it('refuses to replace a path that is not a socket', async () => {
    const p = path.join(dir, 'plain');
    fs.writeFileSync(p, 'x');
    await new UnixSocketConsole(p).listen().then(
      () => expect.fail('should not listen'),
      (err: Error) => expect(err.message).to.match(/not a socket/),
    );
    expect(fs.readFileSync(p, 'utf8')).to.equal('x');
  });
});
