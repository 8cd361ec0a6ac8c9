import { expect } from 'chai';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CONNECT_TIMEOUT_MS,
  FIRST_LOCAL_PORT,
  HOST_CID,
  MAX_PKT_PAYLOAD,
  Op,
  SHUTDOWN_RCV,
  SHUTDOWN_SEND,
} from './constants.js';
import type { VsockPacket } from './packet.js';
import { GUEST_CID, vsockBench, type VsockBench } from './testing.js';

const text = (p: VsockPacket[]) => Buffer.concat(p.filter((x) => x.hdr.op === Op.Rw).map((x) => x.data)).toString();
const has = (op: number) => (all: VsockPacket[]) => all.some((p) => p.hdr.op === op);

/** Resolves with everything a socket received once it holds `want` bytes (or it ended). */
function readUntil(s: net.Socket, want: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const done = () => resolve(got);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.length >= want) done();
    });
    s.on('end', done);
    s.on('close', done);
  });
}

describe('virtio-vsock device with the Unix socket host side (guest driven by MockSplitQueue)', function () {
  this.timeout(20_000);
  let dir: string;
  let uds: string;
  let b: VsockBench;
  const servers: net.Server[] = [];
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsock-'));
    uds = path.join(dir, 'v.sock');
    b = await vsockBench(uds);
  });
  afterEach(async () => {
    await b.dev.destroy();
    for (const s of servers.splice(0)) s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A host service on `<uds>_<port>` handing its connections to `onConn`. */
  const serve = (port: number, onConn: (s: net.Socket) => void): Promise<void> =>
    new Promise((r) => {
      const srv = net.createServer({ allowHalfOpen: true }, onConn);
      servers.push(srv);
      srv.listen(`${uds}_${port}`, () => r());
    });

  it('is device type 19 with three queues; config space holds the guest CID', () => {
    expect(b.dev.deviceType).to.equal(19);
    expect(b.dev.queueMaxSizes).to.have.length(3);
    const cfg = new Uint8Array(8);
    b.dev.readConfig(0, cfg);
    expect(new DataView(cfg.buffer).getBigUint64(0, true)).to.equal(GUEST_CID);
  });

  it('guest → host: REQUEST connects to <uds>_<port>, data flows both ways, a full SHUTDOWN is answered with RST', async () => {
    let host!: net.Socket;
    const connected = new Promise<void>((r) =>
      serve(5000, (s) => {
        host = s;
        r();
      }),
    );
    await serve(5001, () => {}); // another port: not ours
    b.send({ op: Op.Request, srcPort: 1234, dstPort: 5000 });
    const [resp] = await b.until(has(Op.Response), 'RESPONSE');
    await connected;
    expect(resp.hdr).to.deep.include({ srcCid: HOST_CID, dstCid: GUEST_CID, srcPort: 5000, dstPort: 1234 });
    expect(resp.hdr.bufAlloc).to.equal(256 * 1024);
    const got = readUntil(host, 12);
    b.send({ op: Op.Rw, srcPort: 1234, dstPort: 5000 }, Buffer.from('hello, host!'));
    expect(await got).to.equal('hello, host!');
    host.write('hello, guest');
    const back = await b.until((all) => text(all).length >= 12, 'RW from the host');
    expect(text(back)).to.equal('hello, guest');
    expect(back[0].hdr).to.deep.include({ srcPort: 5000, dstPort: 1234, fwdCnt: 12 });
    const ended = new Promise<void>((r) => host.on('end', () => r())); // the VMM closed its side
    b.send({ op: Op.Shutdown, flags: SHUTDOWN_RCV | SHUTDOWN_SEND });
    await b.until(has(Op.Rst), 'RST after SHUTDOWN');
    await ended;
    expect(b.dev.counters()).to.deep.include({ guestConnections: 1, txBytes: 12, rxBytes: 12, connections: 0 });
  });

  it('guest → host: a port nobody listens on gets RST; EOF from the host becomes SHUTDOWN(SEND) after the data', async () => {
    b.send({ op: Op.Request, srcPort: 7, dstPort: 9999 });
    const [rst] = await b.until(has(Op.Rst), 'RST');
    expect(rst.hdr).to.deep.include({ srcPort: 9999, dstPort: 7 });
    await serve(6000, (s) => s.end('bye'));
    b.send({ op: Op.Request, srcPort: 8, dstPort: 6000 });
    const all = await b.until(has(Op.Shutdown), 'SHUTDOWN');
    expect(all.map((p) => p.hdr.op)).to.deep.equal([Op.Response, Op.Rw, Op.Shutdown]);
    expect(text(all)).to.equal('bye');
    expect(all[2].hdr.flags).to.equal(SHUTDOWN_SEND);
  });

  it('host → guest: CONNECT <port> on <uds> becomes a REQUEST; RESPONSE answers OK <local port>; data both ways', async () => {
    const host = net.connect(uds);
    await new Promise((r) => host.once('connect', r));
    host.write('CONNECT 52\nearly');
    const [req] = await b.until(has(Op.Request), 'REQUEST');
    expect(req.hdr).to.deep.include({ srcCid: HOST_CID, dstCid: GUEST_CID, dstPort: 52, srcPort: FIRST_LOCAL_PORT });
    const ok = readUntil(host, `OK ${FIRST_LOCAL_PORT}\nfrom guest`.length);
    b.send({ op: Op.Response, srcPort: 52, dstPort: FIRST_LOCAL_PORT });
    const early = await b.until((all) => text(all) === 'early', 'the bytes sent with CONNECT');
    expect(early[0].hdr.dstPort).to.equal(52);
    b.send({ op: Op.Rw, srcPort: 52, dstPort: FIRST_LOCAL_PORT }, Buffer.from('from guest'));
    expect(await ok).to.equal(`OK ${FIRST_LOCAL_PORT}\nfrom guest`);
    host.destroy();
    expect(b.dev.counters().hostConnections).to.equal(1);
  });

  it('host → guest: the guest refusing (RST) or not answering closes the host socket; a bad line is refused', async () => {
    const closed = (s: net.Socket) => new Promise<void>((r) => s.on('close', () => r()));
    const a = net.connect(uds);
    a.write('CONNECT 53\n');
    await b.until(has(Op.Request), 'REQUEST');
    const aClosed = closed(a);
    b.send({ op: Op.Rst, srcPort: 53, dstPort: FIRST_LOCAL_PORT });
    await aClosed;
    const c = net.connect(uds);
    c.write('CONNECT 54\n');
    await b.until(has(Op.Request), 'REQUEST');
    const cClosed = closed(c);
    b.events.loop.advance(CONNECT_TIMEOUT_MS);
    await b.until(has(Op.Rst), 'RST for the unanswered REQUEST');
    await cClosed;
    const bad = net.connect(uds);
    const badClosed = closed(bad);
    bad.write('HELLO 1\n');
    await badClosed;
    expect(b.dev.counters().refusedConnections).to.equal(1);
  });

  it('credit: the guest gets no more than its buffer allows until it reports what it consumed', async () => {
    let host!: net.Socket;
    const connected = new Promise<void>((r) =>
      serve(5000, (s) => {
        host = s;
        r();
      }),
    );
    b.send({ op: Op.Request, bufAlloc: 8, fwdCnt: 0 });
    await b.until(has(Op.Response), 'RESPONSE');
    await connected;
    host.write('0123456789abcdefghij');
    const first = await b.until((all) => text(all).length >= 8, 'the first 8 bytes');
    expect(text(first)).to.equal('01234567');
    expect(b.dev.muxer.hasRx()).to.equal(false); // no credit left
    b.send({ op: Op.CreditUpdate, bufAlloc: 8, fwdCnt: 8 });
    const second = await b.until((all) => text(all).length >= 8, 'the next 8 bytes');
    expect(text(second)).to.equal('89abcdef');
  });

  it('credit: a guest that sends past the credit it was given is reset', async () => {
    await serve(5000, () => {});
    b.send({ op: Op.Request });
    await b.until(has(Op.Response), 'RESPONSE');
    // 5 x 64 KiB in one go: the host socket has not taken them yet, the credit is 256 KiB
    for (let i = 0; i < 5; i++) b.send({ op: Op.Rw }, new Uint8Array(MAX_PKT_PAYLOAD));
    await b.until(has(Op.Rst), 'RST');
    expect(b.dev.counters()).to.deep.include({ resets: 1, connections: 0 });
  });

  it('hostile TX chains: short headers, lengths past the chain, other CIDs are dropped; other types get RST', async () => {
    b.tx.addChain([{ addr: b.tx.alloc(20), len: 20 }]); // shorter than a header
    b.send({ op: Op.Rw, len: 100 }, Buffer.from('short')); // claims more than it carries
    b.send({ op: Op.Request, srcCid: 99n }); // not the guest's CID
    b.send({ op: Op.Request, dstCid: 5n }); // not to the host
    b.send({ op: Op.Request, len: MAX_PKT_PAYLOAD + 1 });
    b.send({ op: Op.Request, type: 2, srcPort: 77 }); // SEQPACKET is not offered
    const [rst] = await b.until(has(Op.Rst), 'RST for the seqpacket request');
    expect(rst.hdr.dstPort).to.equal(77);
    expect(b.dev.counters().droppedPackets).to.equal(6);
    expect(b.resets).to.deep.equal([]);
    expect(b.tx.readUsed()).to.have.length(6); // every chain went back
  });

  it('a driver reset drops every connection; the listener refuses hosts until DRIVER_OK', async () => {
    let host!: net.Socket;
    const connected = new Promise<void>((r) =>
      serve(5000, (s) => {
        host = s;
        r();
      }),
    );
    b.send({ op: Op.Request });
    await b.until(has(Op.Response), 'RESPONSE');
    await connected;
    const closed = new Promise<void>((r) => host.on('end', () => r()));
    b.dev.reset();
    await closed;
    const s = net.connect(uds);
    await new Promise<void>((r) => s.on('close', () => r()));
    expect(b.dev.counters().connections).to.equal(0);
  });
});
