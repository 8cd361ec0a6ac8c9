import { expect } from 'chai';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { discoverPlugins } from '../../core/plugin/discovery.js';
import { MigrationError } from '../../plugins/migration/errors.js';
import { FrameType } from '../../plugins/migration/frames.js';
import { receiveStream } from '../../plugins/migration/receive.js';
import { MIGRATION_FORMAT, MIGRATION_VERSION } from '../../plugins/migration/stream-format.js';
import {
  Outcomes,
  expectOnlyAsync,
  fuzzParams,
  fuzzRuns,
  fuzzTimeout,
  fuzzTitle,
  reportOutcomes,
  rssMiB,
  sometimes,
} from './support.js';

/**
 * The destination of a live migration against a hostile source: receiveStream listens on a Unix socket, the
 * source sends a stream built from frames (a Hello with edited fields, Pages, Zeros, Progress, State, End with
 * the right or a wrong checksum, unknown types, lengths that lie), then a Commit, possibly cut or with bytes
 * flipped. Invariants: only MigrationError (one line) escapes; whatever happens, no incoming memory file is
 * left behind once the stream failed or the VM's side finished; a memory file that is handed over has the size
 * the Hello announced and holds the pages sent.
 */
const MEM = 16 * 4096;
const PAGE = 4096;

/** The Hello of a VM without plugins and MEM bytes of memory (plans anywhere). */
const GOOD_HELLO = {
  format: MIGRATION_FORMAT,
  version: MIGRATION_VERSION,
  config: { machine: { vcpus: 1, memory: '64K' }, plugins: [] },
  baseDir: '/tmp',
  plugins: [],
  memory: { bytes: MEM, regions: [{ start: 0, size: MEM, fileOffset: 0 }] },
};

const helloValue = fc.record({
  format: fc.oneof({ weight: 24, arbitrary: fc.constant(MIGRATION_FORMAT) }, fc.string({ maxLength: 8 })),
  version: fc.oneof(
    { weight: 24, arbitrary: fc.constant(MIGRATION_VERSION) },
    fc.constantFrom(0, 1, 3, -1, 1.5, 2 ** 53),
  ),
  config: fc.oneof(
    { weight: 24, arbitrary: fc.constant({ machine: { vcpus: 1, memory: '64K' }, plugins: [] }) },
    fc.constant({ machine: { vcpus: 0 } }),
    fc.constant(null),
    fc.constant({ machine: { vcpus: 1, memory: '64K' }, plugins: [{ name: 'no-such-plugin' }] }),
  ),
  baseDir: fc.oneof({ weight: 24, arbitrary: fc.constant('/tmp') }, fc.string({ maxLength: 5 })),
  plugins: fc.oneof(
    { weight: 24, arbitrary: fc.constant([]) },
    fc.constant([{ instance: 'kvm', name: 'kvm', version: '0.1.0' }]),
    fc.constant([{ instance: 'x', name: 'x' }]),
  ),
  memory: fc.oneof(
    { weight: 24, arbitrary: fc.constant({ bytes: MEM, regions: [{ start: 0, size: MEM, fileOffset: 0 }] }) },
    fc.record({
      bytes: fc.oneof(fc.constantFrom(0, 4096, MEM, MEM * 2, 2 ** 40), fc.integer()),
      regions: fc.array(
        fc.record({
          start: fc.oneof(fc.constant(0), fc.nat()),
          size: fc.oneof(fc.constantFrom(4096, MEM, 2 * MEM, 4095), fc.nat()),
          fileOffset: fc.oneof(fc.constant(0), fc.nat()),
        }),
        { maxLength: 3 },
      ),
    }),
  ),
});

const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, n));
  return b;
};
const offset = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0, max: MEM / PAGE - 1 }).map((p) => BigInt(p * PAGE)) },
  fc.constantFrom(1n, BigInt(MEM), 2n ** 63n, 2n ** 64n - 4096n, BigInt(MEM - 1)),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);
/** Frames a real source sends: whole pages inside the memory, zero runs inside it, progress. */
const goodFrame = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .record({ page: fc.integer({ min: 0, max: MEM / PAGE - 1 }), n: fc.integer({ min: 1, max: 3 }) })
      .map(({ page, n }) => ({
        type: FrameType.Pages as number,
        payload: Buffer.concat([u64(BigInt(page * PAGE)), Buffer.alloc(Math.min(n, MEM / PAGE - page) * PAGE, 0x5a)]),
      })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ page: fc.integer({ min: 0, max: MEM / PAGE - 1 }), n: fc.integer({ min: 0, max: 4 }) })
      .map(({ page, n }) => ({
        type: FrameType.Zeros as number,
        payload: Buffer.concat([u64(BigInt(page * PAGE)), u64(BigInt(Math.min(n, MEM / PAGE - page) * PAGE))]),
      })),
  },
  { weight: 1, arbitrary: fc.constant({ type: FrameType.Progress as number, payload: Buffer.from('{}') }) },
);
/** Frames no real source sends: pages anywhere and of any length, zero runs anywhere, odd states, other types. */
const hostileFrame = fc.oneof(
  fc.record({ at: offset, pages: fc.integer({ min: 0, max: 3 }), odd: fc.boolean() }).map(({ at, pages, odd }) => ({
    type: FrameType.Pages as number,
    payload: Buffer.concat([u64(at), Buffer.alloc(pages * PAGE + (odd ? 1 : 0), 0x5a)]),
  })),
  fc.record({ at: offset, len: offset, cut: fc.boolean() }).map(({ at, len, cut }) => ({
    type: FrameType.Zeros as number,
    payload: Buffer.concat([u64(at), u64(len)]).subarray(0, cut ? 12 : 16),
  })),
  fc
    .oneof(fc.constant('[]'), fc.json(), fc.string())
    .map((s) => ({ type: FrameType.State as number, payload: Buffer.from(s) })),
  fc
    .record({ type: fc.integer({ min: 0, max: 255 }), payload: fc.uint8Array({ maxLength: 16 }) })
    .map((f) => ({ type: f.type, payload: Buffer.from(f.payload) })),
);
const frame = fc.oneof({ weight: 12, arbitrary: goodFrame }, { weight: 1, arbitrary: hostileFrame });

const streamCase = fc.record({
  hello: fc.oneof({ weight: 10, arbitrary: helloValue.map((h) => JSON.stringify(h)) }, fc.string({ maxLength: 40 })),
  frames: fc.array(frame, { maxLength: 6 }),
  /** Most streams end with the states, as a real source's do. */
  state: fc.constantFrom(true, true, true, false),
  end: fc.constantFrom('good', 'good', 'good', 'bad', 'none'),
  commit: fc.constantFrom(true, true, true, false),
  /** Raw damage after framing: flip a byte, cut the stream, or give a frame length that lies. */
  damage: sometimes(
    fc.record({ kind: fc.constantFrom('flip', 'cut', 'length'), at: fc.nat(), byte: fc.integer({ min: 1, max: 255 }) }),
    8,
  ),
});
type StreamCase = typeof streamCase extends fc.Arbitrary<infer T> ? T : never;

function encode(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32LE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/** The bytes of one case's stream, and the frame starts (for a lying length). */
function streamOf(c: StreamCase): Buffer {
  const parts = [encode(FrameType.Hello, Buffer.from(c.hello)), ...c.frames.map((f) => encode(f.type, f.payload))];
  if (c.state) parts.push(encode(FrameType.State, Buffer.from('[{"id":"x","version":1,"data":{}}]')));
  const hashed = Buffer.concat(parts);
  const digest = createHash('sha256').update(hashed).digest();
  if (c.end === 'bad') digest[0] ^= 1;
  const tail = [
    ...(c.end === 'none' ? [] : [encode(FrameType.End, digest)]),
    ...(c.commit ? [encode(FrameType.Commit, Buffer.alloc(0))] : []),
  ];
  let all = Buffer.concat([hashed, ...tail]);
  const d = c.damage;
  if (d && all.length > 0) {
    const at = d.at % all.length;
    if (d.kind === 'flip') all[at] ^= d.byte;
    else if (d.kind === 'cut') all = all.subarray(0, at);
    else if (all.length >= 5) all.writeUInt32LE((d.at * 2654435761) >>> 0, Math.min(at, all.length - 5) + 1);
  }
  return all;
}

describe('fuzz: migration stream (the destination against a hostile source)', function () {
  const runs = fuzzRuns();
  this.timeout(fuzzTimeout(2));
  const dir = mkdtempSync(join('/dev/shm', 'tsvmm-fuzz-mig-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const leftovers = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.mem'));
  /** Cases run BATCH at a time (each on its own socket): a case mostly waits for socket turns of the event loop. */
  const BATCH = 8;
  /**
   * receiveStream listening on socket `name` of the folder, and a source that connected, sent `bytes` and ended
   * its side. `got` is what receiveStream gives (awaited by the caller); destroy `sock` when done.
   */
  async function sourceSends(name: string, bytes: Buffer) {
    const url = `unix:${join(dir, name)}`;
    let listening!: () => void;
    const ready = new Promise<void>((r) => (listening = r));
    const got = receiveStream(url, { memoryDir: dir, discovered, onListening: () => listening() });
    // A rejection is awaited by the caller; this keeps it from counting as unhandled while the source sends.
    got.catch(() => undefined);
    await ready;
    const sock = net.createConnection({ path: url.slice(5), allowHalfOpen: true });
    sock.on('error', () => undefined); // the destination may hang up first
    sock.on('data', () => undefined); // Ready / Abort / Started: read and dropped
    await new Promise((r) => sock.once('connect', r));
    sock.end(bytes);
    return { got, sock };
  }
  /** The repository's plugins, discovered once (each case would otherwise scan the plugin folders again). */
  const discovered = discoverPlugins({ nodeModules: [] });

  it(
    fuzzTitle(
      'hostile streams: only MigrationError, no memory file left behind, handed-over memory as announced',
      runs,
    ),
    async () => {
      const outcomes = new Outcomes();
      const rssBefore = rssMiB();
      let cases = 0;
      const one = async (c: StreamCase, slot: number): Promise<void> => {
        const { got, sock } = await sourceSends(`s${slot}.sock`, streamOf(c));
        const err = await expectOnlyAsync([MigrationError], async () => {
          const m = await got;
          const announced = (JSON.parse(c.hello) as { memory: { bytes: number } }).memory.bytes;
          expect(statSync(m.memoryFile).size, 'memory file size').to.equal(announced);
          await m.finish(new Error('fuzz: not assembling'));
          outcomes.add('handed over');
        });
        sock.destroy();
        if (err) outcomes.add((err as MigrationError).kind);
        cases++;
      };
      await fc.assert(
        fc.asyncProperty(fc.array(streamCase, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
          await Promise.all(batch.map((c, slot) => one(c, slot)));
          expect(leftovers(), 'incoming memory files left behind').to.deep.equal([]);
        }),
        fuzzParams({ timeout: 10_000, numRuns: Math.ceil(runs / BATCH) }),
      );
      expect(cases, 'cases run').to.be.at.least(runs);
      reportOutcomes('migration stream', outcomes, ['handed over', 'Format'], 4);
      expect(rssMiB() - rssBefore, 'resident memory growth (MiB)').to.be.below(512);
    },
  );
  it('two receives at once in one process keep apart (found by this target: both used one file name)', async () => {
    const now = Date.now;
    Date.now = () => 1_796_000_000_000; // the old name was pid + Date.now(): the same instant, the same file
    try {
      const good: StreamCase = {
        hello: JSON.stringify(GOOD_HELLO),
        frames: [],
        state: true,
        end: 'good',
        commit: true,
        damage: undefined,
      };
      const run = async (slot: number): Promise<unknown> => {
        const { got, sock } = await sourceSends(`r${slot}.sock`, streamOf(good));
        try {
          return await got;
        } finally {
          sock.destroy();
        }
      };
      const [a, b] = (await Promise.all([run(0), run(1)])) as Awaited<ReturnType<typeof receiveStream>>[];
      expect(a.memoryFile).to.not.equal(b.memoryFile);
      expect(statSync(a.memoryFile).size).to.equal(MEM);
      expect(statSync(b.memoryFile).size).to.equal(MEM);
      await a.finish(new Error('test'));
      await b.finish(new Error('test'));
    } finally {
      Date.now = now;
    }
    expect(leftovers()).to.deep.equal([]);
  });
});
