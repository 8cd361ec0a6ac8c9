import { expect } from 'chai';
import type * as net from 'node:net';
import { SNAPSHOT_PAGE } from './format.js';
import { FrameType, FrameWriter } from './frames.js';
import { sendPages, YIELD_PAGES } from './pages.js';

/** A socket stand-in that takes every write at once (no backpressure: sendPages never waits for a drain). */
function sink(): { sock: net.Socket; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const sock = { destroyed: false, write: (b: Uint8Array) => (chunks.push(Buffer.from(b)), true) };
  return { sock: sock as unknown as net.Socket, bytes: () => Buffer.concat(chunks) };
}

/** The frames in `b`: type and payload. */
function framesOf(b: Buffer): { type: number; payload: Buffer }[] {
  const out: { type: number; payload: Buffer }[] = [];
  for (let o = 0; o < b.length;) {
    const len = b.readUInt32LE(o + 1);
    out.push({ type: b[o]!, payload: b.subarray(o + 5, o + 5 + len) });
    o += 5 + len;
  }
  return out;
}

describe('migration: sendPages', () => {
  const PAGES = 8 * YIELD_PAGES;
  const memory = Buffer.alloc(PAGES * SNAPSHOT_PAGE);
  // data in a few pages, zeros elsewhere (the mix of an idle guest)
  const dataPages = [3, YIELD_PAGES + 1, 5 * YIELD_PAGES + 7, PAGES - 1];
  for (const p of dataPages) memory.fill(p & 0xff || 1, p * SNAPSHOT_PAGE, (p + 1) * SNAPSHOT_PAGE);
  const view = (i: number): Uint8Array => memory.subarray(i * SNAPSHOT_PAGE, (i + 1) * SNAPSHOT_PAGE);

  /** Runs sendPages while counting the event-loop turns other work got meanwhile. */
  async function turnsDuring(copy: boolean, skipZero: boolean): Promise<{ turns: number; frames: Buffer }> {
    const { sock, bytes } = sink();
    let turns = 0;
    let running = true;
    const tick = (): void => {
      if (!running) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    await sendPages(new FrameWriter(sock), view, new Uint8Array(PAGES).fill(1), { skipZero, copy });
    running = false;
    return { turns, frames: bytes() };
  }

  it('a pre-copy round gives the event loop a turn every YIELD_PAGES pages, zero pages included', async () => {
    const { turns } = await turnsDuring(false, true);
    expect(turns).to.be.at.least(PAGES / YIELD_PAGES - 1);
  });

  it('the zero runs and data pages it sends cover every page once, whatever the turns cut', async () => {
    const { frames } = await turnsDuring(false, false);
    const seen = new Uint8Array(PAGES);
    for (const f of framesOf(frames)) {
      const at = Number(f.payload.readBigUInt64LE(0)) / SNAPSHOT_PAGE;
      if (f.type === FrameType.Zeros) {
        const n = Number(f.payload.readBigUInt64LE(8)) / SNAPSHOT_PAGE;
        for (let p = at; p < at + n; p++) {
          expect(dataPages, `page ${p} sent as zero`).to.not.include(p);
          seen[p]!++;
        }
      } else {
        expect(f.type).to.equal(FrameType.Pages);
        const n = (f.payload.length - 8) / SNAPSHOT_PAGE;
        for (let p = at; p < at + n; p++) {
          expect(f.payload.subarray(8 + (p - at) * SNAPSHOT_PAGE, 8 + (p - at + 1) * SNAPSHOT_PAGE)).to.deep.equal(
            Buffer.from(view(p)),
          );
          seen[p]!++;
        }
      }
    }
    expect([...seen].every((x) => x === 1)).to.equal(true);
  });

  it('the stop-and-copy (copy) runs in one go: the guest is stopped, nothing else needs the thread', async () => {
    const { turns } = await turnsDuring(true, false);
    expect(turns).to.equal(0);
  });
});
