import { expect } from 'chai';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { MigrationError } from './errors.js';
import { FrameReader, FrameType, FrameWriter } from './frames.js';
import { receiveStream } from './receive.js';
import { MIGRATION_FORMAT, MIGRATION_VERSION, type Hello } from './stream-format.js';
import { parseMigrationUrl } from './url.js';

/** A Hello for a VM without plugins (plans anywhere) and 64 KiB of memory. */
const hello = (o: Partial<Hello> = {}): Hello => ({
  format: MIGRATION_FORMAT,
  version: MIGRATION_VERSION,
  config: { machine: { vcpus: 1, memory: '64K' }, plugins: [] },
  baseDir: '/tmp',
  plugins: [],
  memory: { bytes: 65536, regions: [{ start: 0, size: 65536, fileOffset: 0 }] },
  ...o,
});

const page = (fill: number): Buffer => Buffer.alloc(4096, fill);
const pagesAt = (offset: number, ...pages: Buffer[]): Buffer[] => {
  const h = Buffer.alloc(8);
  h.writeBigUInt64LE(BigInt(offset));
  return [h, ...pages];
};

describe('migration: the stream, and hostile streams', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mig-stream-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /**
   * Listens with receiveStream, connects as the source and runs `source` on the connection; resolves with what
   * receiveStream ended with (its result or its error), after the source finished.
   */
  async function against(source: (w: FrameWriter, r: FrameReader, sock: net.Socket) => Promise<void>) {
    const url = `unix:${path.join(dir, 'in.sock')}`;
    let listening!: () => void;
    const ready = new Promise<void>((r) => (listening = r));
    const got = receiveStream(url, { memoryDir: dir, onListening: () => listening() }).then(
      (v) => v,
      (e: unknown) => e,
    );
    await ready;
    const u = parseMigrationUrl(url);
    const sock = net.createConnection(u.kind === 'unix' ? u.path : '');
    await new Promise((r) => sock.once('connect', r));
    const w = new FrameWriter(sock);
    const r = new FrameReader(sock);
    await source(w, r, sock).catch(() => {});
    const out = await got;
    sock.destroy();
    return out;
  }

  const leftovers = (): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.mem'));

  it('receives pages, zeros and the state, checks the checksum, says Ready, waits for Commit and the close', async () => {
    let answer = -1;
    const got = await against(async (w, r, sock) => {
      await w.sendJson(FrameType.Hello, hello());
      await w.send(FrameType.Pages, ...pagesAt(4096, page(1), page(2)));
      await w.send(FrameType.Pages, ...pagesAt(8192, page(3)));
      const z = Buffer.alloc(16);
      z.writeBigUInt64LE(4096n, 0);
      z.writeBigUInt64LE(4096n, 8);
      await w.send(FrameType.Zeros, z);
      await w.sendJson(FrameType.State, [{ id: 'x', version: 1, data: {} }]);
      await w.end();
      let f = await r.next();
      if (f.type === FrameType.Prepared) f = await r.next(); // no VM built early here: Prepared comes at once
      answer = f.type;
      await w.send(FrameType.Commit);
      sock.end(); // the source released its VM
    });
    expect(answer).to.equal(FrameType.Ready);
    expect(got).to.not.be.instanceOf(Error);
    const m = got as Awaited<ReturnType<typeof receiveStream>>;
    const mem = fs.readFileSync(m.memoryFile);
    expect(mem.length).to.equal(65536);
    expect(mem[4096], 'zeroed again').to.equal(0);
    expect(mem[8192], 'the later page wins').to.equal(3);
    expect(m.states).to.deep.equal([{ id: 'x', version: 1, data: {} }]);
    await m.finish(new Error('test'));
    expect(leftovers()).to.deep.equal([]);
  });

  /** Expects a MigrationError of `kind` matching `re`, one line, and no memory file left. */
  function refused(got: unknown, kind: string, re: RegExp): void {
    expect(got, String(got)).to.be.instanceOf(MigrationError);
    const e = got as MigrationError;
    expect(e.kind, e.message).to.equal(kind);
    expect(e.message).to.match(re);
    expect(e.message).to.not.include('\n');
    expect(leftovers(), 'the memory file is removed').to.deep.equal([]);
  }

  it('refuses a stream that stops half-way, and frees the memory file', async () => {
    const got = await against(async (w, _r, sock) => {
      await w.sendJson(FrameType.Hello, hello());
      await w.send(FrameType.Pages, ...pagesAt(0, page(1)));
      sock.write(Buffer.from([FrameType.Pages, 0, 0x10, 0, 0, 1, 2, 3])); // a header and 3 of 4096 bytes
      sock.end();
    });
    refused(got, 'Io', /stopped half-way/);
  });

  it('refuses a bit flipped in transit (the End checksum)', async () => {
    let answer: Buffer | undefined;
    const got = await against(async (w, r, sock) => {
      await w.sendJson(FrameType.Hello, hello());
      const p = page(7);
      await w.send(FrameType.Pages, ...pagesAt(0, p));
      // the same frame again, hashed with the flipped byte missing: write it raw
      const h = Buffer.alloc(5);
      h[0] = FrameType.Pages;
      h.writeUInt32LE(8 + 4096, 1);
      const flipped = Buffer.from(p);
      flipped[100] ^= 1;
      sock.write(Buffer.concat([h, ...pagesAt(4096, flipped)]));
      await w.sendJson(FrameType.State, []);
      await w.end();
      let f = await r.next();
      if (f.type === FrameType.Prepared) f = await r.next();
      answer = f.payload;
    });
    refused(got, 'Format', /checksum does not match/);
    expect(answer?.toString()).to.match(/checksum/);
  });

  it('refuses a newer stream version, another format, a config that does not plan, and other plugins', async () => {
    refused(await against(async (w) => w.sendJson(FrameType.Hello, hello({ version: 9 }))), 'Version', /version 9/);
    refused(
      await against(async (w) => w.sendJson(FrameType.Hello, { ...hello(), format: 'qemu' })),
      'Format',
      /not a migration stream/,
    );
    const bad = await against(async (w) => w.sendJson(FrameType.Hello, hello({ config: { machine: { vcpus: 0 } } })));
    expect(bad).to.be.instanceOf(Error);
    expect((bad as Error).message).to.match(/vcpus/);
    refused(
      await against(async (w) =>
        w.sendJson(FrameType.Hello, hello({ plugins: [{ instance: 'kvm', name: 'kvm', version: '0.1.0' }] })),
      ),
      'Mismatch',
      /built from plugins kvm\(kvm\), this config gives/,
    );
  });

  it('refuses pages outside the memory, frames that are too big, and a source that aborts', async () => {
    refused(
      await against(async (w) => {
        await w.sendJson(FrameType.Hello, hello());
        await w.send(FrameType.Pages, ...pagesAt(65536, page(1)));
      }),
      'Format',
      /leave the 65536-byte memory/,
    );
    refused(
      await against(async (w, _r, sock) => {
        await w.sendJson(FrameType.Hello, hello());
        sock.write(Buffer.from([FrameType.Pages, 0xff, 0xff, 0xff, 0x7f]));
      }),
      'Format',
      /too big/,
    );
    refused(
      await against(async (w) => {
        await w.sendJson(FrameType.Hello, hello());
        await w.send(FrameType.Abort, Buffer.from('operator cancelled'));
      }),
      'Cancelled',
      /operator cancelled/,
    );
  });
});
