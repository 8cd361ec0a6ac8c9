import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestAddress } from '../../core/address.js';
import { OrderedStateRegistry } from '../../core/state/registry.js';
import { FakeSnapshottable, silentLogger, testGuestMemory } from '../../core/testing/index.js';
import { VmLifecycle } from '../../core/lifecycle.js';
import type { Machine } from '../../core/machine.js';
import { MigrationError } from './errors.js';
import { manifestText, sha256, type ManifestBody } from './format.js';
import { nonZeroRuns } from './memory-image.js';
import { openSnapshot } from './snapshot-dir.js';
import { restoreHooks } from './restore.js';
import { writeSnapshot } from './snapshot.js';
import type { VmParts } from './vm-parts.js';

/** VM parts made of doubles: two fake snapshottables and 1 MiB of heap memory with a few non-zero pages. */
function fakeParts(): { parts: VmParts; a: FakeSnapshottable } {
  const states = new OrderedStateRegistry();
  const a = new FakeSnapshottable('a');
  a.counter = 42;
  a.big = 1n << 63n;
  states.add(a);
  states.add(new FakeSnapshottable('b'));
  const memory = testGuestMemory(1 << 20);
  memory.writeU32(GuestAddress.of(0x1000), 0xdeadbeef);
  memory.fill(GuestAddress.of(0x8000), 3 * 4096, 0x5a);
  const parts = {
    machine: {} as Machine,
    lifecycle: new VmLifecycle(),
    states,
    devices: { add: () => ({ dispose() {} }), get: () => undefined, all: () => [] },
    memory,
    logger: silentLogger(),
    origin: { config: { machine: { memory: '1M' } }, baseDir: '/tmp', plugins: [] },
  };
  return { parts, a };
}

/** Expects `fn` to throw one one-line MigrationError of `kind` whose message matches `re`. */
function refused(fn: () => unknown, kind: string, re: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(MigrationError);
    const e = err as MigrationError;
    expect(e.kind, e.message).to.equal(kind);
    expect(e.message).to.match(re);
    expect(e.message).to.not.include('\n');
    return;
  }
  expect.fail(`expected a MigrationError ${kind} matching ${re}`);
}

describe('migration: snapshot directories, and hostile ones', () => {
  let root: string;
  let dir: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'mig-unit-'));
    dir = path.join(root, 'snap');
    fs.mkdirSync(dir);
    writeSnapshot(fakeParts().parts, dir);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const file = (name: string): string => path.join(dir, name);
  const body = (): ManifestBody =>
    (JSON.parse(fs.readFileSync(file('manifest.json'), 'utf8')) as { body: ManifestBody }).body;
  /** Rewrites the manifest with `edit` applied and a correct checksum (a well-formed but different manifest). */
  const rewrite = (edit: (b: ManifestBody) => void): void => {
    const b = body();
    edit(b);
    fs.writeFileSync(file('manifest.json'), manifestText(b));
  };
  const flip = (name: string, at: number): void => {
    const data = fs.readFileSync(file(name));
    data[at] = data[at]! ^ 0x10;
    fs.writeFileSync(file(name), data);
  };

  it('finds the runs of non-zero pages', () => {
    const m = new Uint8Array(6 * 4096);
    m[4096 + 7] = 1;
    m[2 * 4096] = 1;
    m[5 * 4096 + 4095] = 1;
    expect(nonZeroRuns(m)).to.deep.equal([
      [4096, 8192],
      [5 * 4096, 4096],
    ]);
    expect(nonZeroRuns(new Uint8Array(8192))).to.deep.equal([]);
  });

  it('writes a sparse memory file with only the non-zero pages as extents, and opens it again', () => {
    const b = body();
    expect(b.memory.bytes).to.equal(1 << 20);
    expect(b.memory.extents).to.deep.equal([
      [0x1000, 4096],
      [0x8000, 3 * 4096],
    ]);
    expect(fs.statSync(file('memory.bin')).size).to.equal(1 << 20);
    const snap = openSnapshot(dir);
    expect((snap.states as { id: string }[]).map((s) => s.id)).to.deep.equal(['a', 'b']);
    expect(fs.readFileSync(file('memory.bin')).readUInt32LE(0x1000)).to.equal(0xdeadbeef);
  });

  it('restores the saved states into fresh objects; states of another VM are refused and change nothing', () => {
    const snap = openSnapshot(dir);
    const other = fakeParts();
    other.a.counter = 7;
    const vm = {
      machine: { prepareRestore: () => {} },
      container: { resolve: () => other.parts.states },
    } as never;
    restoreHooks(snap.body, () => snap.states, snap.memoryPath).load(vm);
    expect(other.a.counter).to.equal(42);
    expect(other.a.big).to.equal(1n << 63n);

    const third = fakeParts();
    third.a.counter = 7;
    third.parts.states.add(new FakeSnapshottable('c'));
    const vm3 = { machine: { prepareRestore: () => {} }, container: { resolve: () => third.parts.states } } as never;
    refused(
      () => restoreHooks(snap.body, () => snap.states, snap.memoryPath).load(vm3),
      'Mismatch',
      /no state for 'c'/,
    );
    expect(third.a.counter, 'nothing was loaded').to.equal(7);
  });

  it('refuses a truncated memory file, state file or manifest', () => {
    fs.truncateSync(file('memory.bin'), 4096 * 10);
    refused(() => openSnapshot(dir), 'Format', /memory\.bin: the file holds 40960 bytes, the manifest says 1048576/);
    fs.truncateSync(file('memory.bin'), 1 << 20);
    refused(() => openSnapshot(dir), 'Format', /checksum mismatch/);
    writeSnapshot(fakeParts().parts, (fs.rmSync(dir, { recursive: true }), fs.mkdirSync(dir), dir));
    const st = fs.readFileSync(file('state.json'));
    fs.writeFileSync(file('state.json'), st.subarray(0, st.length - 5));
    refused(() => openSnapshot(dir), 'Format', /state\.json holds \d+ bytes, the manifest says/);
    const mf = fs.readFileSync(file('manifest.json'));
    fs.writeFileSync(file('manifest.json'), mf.subarray(0, mf.length >> 1));
    refused(() => openSnapshot(dir), 'Format', /manifest\.json is not JSON/);
  });

  it('hashes the memory in a worker when asked: openSnapshot returns at once, memoryVerified tells', async () => {
    const good = openSnapshot(dir, { verifyInBackground: true });
    expect(good.memoryVerified).to.be.instanceOf(Promise);
    await good.memoryVerified;
    flip('memory.bin', 0x8000 + 100);
    const bad = openSnapshot(dir, { verifyInBackground: true }); // the sizes still checked here; the hash later
    const err = await bad.memoryVerified!.then(
      () => undefined,
      (e: unknown) => e,
    );
    refused(
      () => {
        throw err;
      },
      'Format',
      /memory\.bin: checksum mismatch \(the file was changed or damaged\)/,
    );
    expect(openSnapshot(dir, { verifyInBackground: true, verifyMemory: false }).memoryVerified).to.equal(undefined);
  });

  it('refuses a bit flipped in the memory pages, the state or the manifest', () => {
    flip('memory.bin', 0x8000 + 100);
    refused(() => openSnapshot(dir), 'Format', /memory\.bin: checksum mismatch/);
    expect(() => openSnapshot(dir, { verifyMemory: false }), 'skipping the page hash').to.not.throw();
    flip('memory.bin', 0x8000 + 100);
    flip('state.json', 10);
    refused(() => openSnapshot(dir), 'Format', /state\.json: checksum mismatch/);
    flip('state.json', 10);
    const text = fs.readFileSync(file('manifest.json'), 'utf8');
    fs.writeFileSync(file('manifest.json'), text.replace('"createdAt":"2', '"createdAt":"3'));
    refused(() => openSnapshot(dir), 'Format', /manifest\.json: checksum mismatch/);
  });

  it('refuses another format, a newer format version, and hostile extents', () => {
    rewrite((b) => (b.version = 99));
    refused(() => openSnapshot(dir), 'Version', /format version 99 is newer than this build reads \(1\)/);
    rewrite((b) => (b.version = 1));
    rewrite((b) => ((b as { format: string }).format = 'qemu'));
    refused(() => openSnapshot(dir), 'Format', /not a tsvmm snapshot/);
    rewrite((b) => ((b as { format: string }).format = 'tsvmm-snapshot'));
    rewrite((b) => (b.memory.extents = [[0, 4096 * 1000]]));
    refused(() => openSnapshot(dir), 'Format', /extent at 0 leaves the 1048576-byte image/);
    rewrite(
      (b) =>
        (b.memory.extents = [
          [4096, 4096],
          [0, 4096],
        ]),
    );
    refused(() => openSnapshot(dir), 'Format', /extent at 0 overlaps/);
    rewrite((b) => (b.memory.regions = [{ start: 0, size: 4096, fileOffset: 4096 }]));
    refused(() => openSnapshot(dir), 'Format', /does not follow/);
    rewrite((b) => (b.state.sha256 = 'x'));
    refused(() => openSnapshot(dir), 'Format', /state\.sha256/);
  });

  it('refuses a directory without a snapshot and state that is not a list', () => {
    refused(() => openSnapshot(path.join(root, 'none')), 'Format', /cannot read manifest\.json: ENOENT/);
    const states = '{"not":"a list"}';
    fs.writeFileSync(file('state.json'), states);
    rewrite((b) => (b.state = { file: 'state.json', bytes: states.length, sha256: sha256(states) }));
    const snap = openSnapshot(dir);
    const vm = { machine: { prepareRestore: () => {} }, container: { resolve: () => fakeParts().parts.states } };
    refused(
      () => restoreHooks(snap.body, () => snap.states, snap.memoryPath).load(vm as never),
      'Mismatch',
      /not a list/,
    );
  });
});
