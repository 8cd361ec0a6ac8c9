import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { FrameReader, FrameType, READ_AHEAD } from './frames.js';

/** A socket stand-in: the test pushes bytes; pause/resume are recorded as a real socket's flowing state. */
class FakeSocket extends EventEmitter {
  paused = false;
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  isPaused(): boolean {
    return this.paused;
  }
}

/** One frame's bytes: type, u32 LE length, payload. */
function frame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32LE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

describe('migration: FrameReader', () => {
  it('takes in at most READ_AHEAD bytes ahead of its reader, so the sender feels where the reader is', async () => {
    const sock = new FakeSocket();
    const r = new FrameReader(sock as unknown as net.Socket);
    const one = frame(FrameType.Pages, Buffer.alloc(1 << 20, 7));
    let pushed = 0;
    while (!sock.paused && pushed < 64 << 20) {
      sock.emit('data', one);
      pushed += one.length;
    }
    expect(sock.paused, 'paused once more than READ_AHEAD waits').to.equal(true);
    expect(pushed).to.be.at.most(READ_AHEAD + 2 * one.length);
    // reading frames lets it flow again; every frame comes out whole and in order, and bytes counts payloads
    const f = await r.next();
    expect(f.type).to.equal(FrameType.Pages);
    expect(f.payload.length).to.equal(1 << 20);
    expect(f.payload[12345]).to.equal(7);
    expect(sock.paused, 'flowing again once no more than READ_AHEAD waits').to.equal(false);
    expect(r.bytes).to.equal(1 << 20);
  });

  it('reads a frame larger than READ_AHEAD (a big state) split over many chunks, and empty frames', async () => {
    const sock = new FakeSocket();
    const r = new FrameReader(sock as unknown as net.Socket);
    const big = Buffer.alloc(READ_AHEAD * 3);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff;
    const bytes = Buffer.concat([frame(FrameType.State, big), frame(FrameType.Commit, Buffer.alloc(0))]);
    const got = r.next();
    for (let i = 0; i < bytes.length; i += 100_000) {
      await new Promise((res) => setImmediate(res));
      expect(sock.paused, 'never paused while the frame it waits for is not all in').to.equal(false);
      sock.emit('data', bytes.subarray(i, i + 100_000));
    }
    const f = await got;
    expect(f.type).to.equal(FrameType.State);
    expect(f.payload.equals(big)).to.equal(true);
    const c = await r.next();
    expect(c.type).to.equal(FrameType.Commit);
    expect(c.payload.length).to.equal(0);
    expect(r.bytes).to.equal(big.length);
  });
});
