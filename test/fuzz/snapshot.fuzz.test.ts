import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StateError } from '../../core/state/errors.js';
import { restoreSnapshot, takeSnapshot } from '../../core/state/persist.js';
import type { SavedState, Snapshottable } from '../../core/state/snapshottable.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../core/virtio/virtio.js';
import { MigrationError } from '../../plugins/migration/errors.js';
import {
  SNAPSHOT_FILES,
  SNAPSHOT_FORMAT,
  SNAPSHOT_FORMAT_VERSION,
  manifestText,
  sha256,
} from '../../plugins/migration/format.js';
import type { ManifestBody } from '../../plugins/migration/format.js';
import { openSnapshot } from '../../plugins/migration/snapshot-dir.js';
import { uartTestBed } from '../../plugins/serial/testing.js';
import { mmioTestHost } from '../../plugins/virtio-mmio/testing.js';
import { EchoDevice, MockSplitQueue } from '../../plugins/virtio/testing.js';
import { Outcomes, expectOnly, fuzzParams, fuzzTimeout, fuzzTitle, reportOutcomes, sometimes } from './support.js';

/**
 * Snapshot files, two ways. (1) A snapshot directory (manifest.json, state.json, memory.bin) built like
 * writeSnapshot builds one, then edited: manifest fields set to any value (and the manifest's checksum
 * recomputed, so the checks behind it run), bytes flipped, files cut or grown; `openSnapshot` may only throw
 * MigrationError (one line), and what it accepts is consistent (regions and extents inside the memory file).
 * (2) Saved device states, as restoreVmState hands them to each device: the states of a virtio-mmio transport
 * (driver set up, a chain served, EVENT_IDX) and a 16550 UART, with any field set to any value, removed or
 * added; restoring may only throw StateError and then leaves the device's state as it was; a state it accepts
 * leaves a device that serves its guest without an error escaping (a queue notify, UART register accesses).
 */

/** Any JSON-ish value a hostile file may hold where a field was. */
const anyValue = fc.oneof(
  fc.integer(),
  fc.constantFrom(-1, 0, 1, 4095, 4096, 65535, 65536, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 0.5, 1e300),
  fc.constantFrom('0x0', '0xffffffffffffffff', '0x10000000000000000', '-1', 'AAAA', ''),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 8 }),
  fc.array(fc.integer({ min: -1, max: 70000 }), { maxLength: 3 }),
  fc.constant({}),
);

/** One edit of a JSON tree: `at` picks a node (in walk order), `kind` what happens to it. */
const edit = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('set', 'set', 'set', 'delete', 'add', 'nudge'),
  value: anyValue,
  key: fc.constantFrom('extra', 'x', '__proto__', 'constructor'),
});
type Edit = typeof edit extends fc.Arbitrary<infer T> ? T : never;

/** Every (container, key) pair of a JSON tree, in walk order. */
function slots(root: unknown): [Record<string, unknown> | unknown[], string | number][] {
  const out: [Record<string, unknown> | unknown[], string | number][] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push([v, i]);
        walk(x);
      });
    } else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        out.push([o, k]);
        walk(o[k]);
      }
    }
  };
  walk(root);
  return out;
}

/** Applies edits to a deep copy of `value`. */
function edited<T>(value: T, edits: readonly Edit[]): T {
  const copy = JSON.parse(JSON.stringify(value)) as T;
  for (const e of edits) {
    const all = slots(copy);
    if (all.length === 0) break;
    const [c, k] = all[e.at % all.length];
    const cur = (c as Record<string | number, unknown>)[k];
    // A fresh copy of the value: the generator's constants are shared between cases and must stay as they are.
    const value = JSON.parse(JSON.stringify(e.value ?? null)) as unknown;
    if (e.kind === 'set') (c as Record<string | number, unknown>)[k] = value;
    else if (e.kind === 'nudge' && typeof cur === 'number')
      (c as Record<string | number, unknown>)[k] = cur + (e.at % 2 ? 1 : -1) * 4096;
    else if (e.kind === 'delete') {
      if (Array.isArray(c)) c.splice(k as number, 1);
      else delete c[k as string];
    } else if (e.kind === 'add' && !Array.isArray(c) && cur && typeof cur === 'object' && !Array.isArray(cur))
      Object.defineProperty(cur, e.key, { value, enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

const PAGE = 4096;
const MEM = 16 * PAGE;

/** A snapshot directory's three files as writeSnapshot makes them: 64 KiB of memory with pages 1-2 and 5 written. */
function goodSnapshot(): { body: ManifestBody; state: Buffer; memory: Buffer } {
  const memory = Buffer.alloc(MEM);
  memory.fill(0x11, PAGE, 3 * PAGE);
  memory.fill(0x22, 5 * PAGE, 6 * PAGE);
  const extents: [number, number][] = [
    [PAGE, 2 * PAGE],
    [5 * PAGE, PAGE],
  ];
  const state = Buffer.from(JSON.stringify([{ id: 'serial0', version: 1, data: {} }]));
  const body: ManifestBody = {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_FORMAT_VERSION,
    createdAt: '2026-12-07T00:00:00.000Z',
    config: { machine: { vcpus: 1, memory: '64K' }, plugins: [] },
    baseDir: '/tmp',
    plugins: [],
    state: { file: SNAPSHOT_FILES.state, bytes: state.length, sha256: sha256(state) },
    memory: {
      file: SNAPSHOT_FILES.memory,
      bytes: MEM,
      regions: [{ start: 0, size: MEM, fileOffset: 0 }],
      extents,
      sha256: sha256(Buffer.concat(extents.map(([o, l]) => memory.subarray(o, o + l)))),
    },
  };
  return { body, state, memory };
}

const fileDamage = fc.record({
  kind: fc.constantFrom('flip', 'cut', 'grow'),
  at: fc.nat(),
  byte: fc.integer({ min: 1, max: 255 }),
});
const damage = (b: Buffer, d: { kind: string; at: number; byte: number } | undefined): Buffer => {
  if (!d) return b;
  const out = Buffer.from(b);
  if (d.kind === 'grow') return Buffer.concat([out, Buffer.alloc((d.at % 3) * PAGE + 1)]);
  if (out.length === 0) return out;
  if (d.kind === 'cut') return out.subarray(0, d.at % out.length);
  out[d.at % out.length] ^= d.byte;
  return out;
};

const dirCase = fc.record({
  edits: fc.array(edit, { maxLength: 3 }),
  /** Recompute the manifest's checksum after the edits (else a checksum mismatch stops everything early). */
  resign: fc.constantFrom(true, true, true, false),
  manifest: sometimes(fileDamage, 8),
  state: sometimes(fileDamage, 6),
  stateResigned: fc.boolean(),
  memory: sometimes(fileDamage, 6),
  verifyMemory: fc.boolean(),
});

/** A transport with a driver that negotiated EVENT_IDX and got one chain served, and a UART with some state. */
function devices() {
  const t = mmioTestHost();
  const dev = new EchoDevice('echo0', t.events.loop);
  t.host.attachVirtioDevice(dev);
  const transport = t.host.transports[0] as unknown as Snapshottable;
  const drv = t.driverAt(t.bus.registrations('mmio')[0].range.start.value);
  const q = new MockSplitQueue(t.memory, 16);
  drv.init([q], VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX);
  const text = new TextEncoder().encode('hello');
  q.addChain([
    { addr: q.alloc(text.length, text), len: text.length },
    { addr: q.alloc(64), len: 64, write: true },
  ]);
  drv.notify(0);
  t.events.run();
  const serial = uartTestBed();
  serial.io.outb(3, 0x03); // LCR 8N1
  serial.io.outb(1, 0x03); // IER: RX and THRE interrupts
  serial.io.outb(2, 0xc7); // FIFOs on
  serial.io.outb(0, 0x41);
  return { t, drv, q, transport, serial };
}

describe('fuzz: snapshot files (directory checks and saved device states)', function () {
  this.timeout(fuzzTimeout(2));
  const dir = mkdtempSync(join('/dev/shm', 'tsvmm-fuzz-snap-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const good = goodSnapshot();

  it(
    fuzzTitle('edited snapshot directories: only MigrationError from openSnapshot; what it accepts is consistent'),
    () => {
      const outcomes = new Outcomes();
      fc.assert(
        fc.property(dirCase, (c) => {
          const body = c.edits.length ? edited(good.body, c.edits) : good.body;
          const json = JSON.stringify(body);
          const manifest = c.resign
            ? manifestText(body)
            : `{"sha256":"${sha256(JSON.stringify(good.body))}","body":${json}}\n`;
          const state = damage(good.state, c.state);
          let mtext = manifest;
          if (c.state && c.stateResigned && body && typeof body === 'object' && (body as ManifestBody).state) {
            const b2 = {
              ...(body as ManifestBody),
              state: { ...(body as ManifestBody).state, bytes: state.length, sha256: sha256(state) },
            };
            mtext = manifestText(b2);
          }
          writeFileSync(join(dir, SNAPSHOT_FILES.manifest), damage(Buffer.from(mtext), c.manifest));
          writeFileSync(join(dir, SNAPSHOT_FILES.state), state);
          writeFileSync(join(dir, SNAPSHOT_FILES.memory), damage(good.memory, c.memory));
          let opened: ReturnType<typeof openSnapshot> | undefined;
          const err = expectOnly([MigrationError], () => {
            opened = openSnapshot(dir, { verifyMemory: c.verifyMemory });
          });
          if (err) return void outcomes.add((err as MigrationError).kind);
          outcomes.add('opened');
          const m = opened!.body.memory;
          expect(m.regions.reduce((n, r) => n + r.size, 0)).to.equal(m.bytes);
          for (const [off, len] of m.extents) expect(off + len).to.be.at.most(m.bytes);
        }),
        fuzzParams(),
      );
      reportOutcomes('snapshot directory', outcomes, ['opened', 'Format'], 3);
    },
  );

  it(
    fuzzTitle('edited device states: only StateError, refused ones change nothing, accepted ones serve the guest'),
    () => {
      const outcomes = new Outcomes();
      const base = devices();
      const saved = {
        transport: takeSnapshot(base.transport),
        serial: takeSnapshot(base.serial.uart as unknown as Snapshottable),
      };
      fc.assert(
        fc.property(
          fc.constantFrom('transport', 'serial'),
          fc.array(edit, { minLength: 1, maxLength: 3 }),
          (which, edits) => {
            const d = devices();
            const target = (which === 'transport' ? d.transport : d.serial.uart) as unknown as Snapshottable;
            const before = JSON.stringify(takeSnapshot(target));
            const hostile = edited<SavedState>(saved[which], edits);
            const err = expectOnly([StateError], () => restoreSnapshot(target, hostile));
            if (err) {
              outcomes.add(`${which}: ${(err as StateError).kind}`);
              expect(JSON.stringify(takeSnapshot(target)), 'a refused state changes nothing').to.equal(before);
              return;
            }
            outcomes.add(`${which}: accepted`);
            // The restored device serves its guest; nothing escapes (errors go to NEEDS_RESET or are refused).
            if (which === 'transport') {
              d.drv.notify(0);
              d.t.events.run();
              expect(d.t.events.errors, 'errors escaping the device').to.deep.equal([]);
            } else {
              for (let off = 0; off < 8; off++) d.serial.io.inb(off);
              d.serial.io.outb(0, 0x42);
            }
            takeSnapshot(target); // and it can be saved again
          },
        ),
        fuzzParams(),
      );
      reportOutcomes('device states', outcomes, ['transport: accepted', 'serial: accepted', 'transport: Invalid'], 4);
    },
  );
});
