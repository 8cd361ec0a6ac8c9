import { expect } from 'chai';
import { UvEventLoop } from '../../../core/events/uv-event-loop.js';
import { c } from '../../../core/native/libc.js';
import { AF_UNIX, MSG_DONTWAIT, net, SOCK_CLOEXEC, SOCK_NONBLOCK } from './native.js';
import { STREAM_MAX_PENDING, StreamSocketBackend } from './stream.js';

const SOCK_STREAM = 1;

/** A connected stream socketpair: the backend's end and the peer's (non-blocking). */
function pair(): [number, number] {
  const sv = new Int32Array(2);
  expect(net.socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)).to.equal(0);
  return [sv[0], sv[1]];
}

function peerRead(fd: number, max = 1 << 20): Uint8Array {
  const b = new Uint8Array(max);
  const n = Number(net.recv(fd, b, b.length, MSG_DONTWAIT));
  return n > 0 ? b.subarray(0, n) : new Uint8Array(0);
}

const framed = (f: Uint8Array): Uint8Array => {
  const m = new Uint8Array(4 + f.length);
  new DataView(m.buffer).setUint32(0, f.length, false);
  m.set(f, 4);
  return m;
};

describe('virtio-net stream backend (QEMU -netdev stream / passt wire format)', () => {
  it('writes each frame with its 4-byte big-endian length', () => {
    const [ours, peer] = pair();
    const be = StreamSocketBackend.fromFd(ours);
    try {
      expect(be.send(0, Uint8Array.of(1, 2, 3))).to.equal(true);
      expect([...peerRead(peer)]).to.deep.equal([0, 0, 0, 3, 1, 2, 3]);
    } finally {
      be.close();
      c.close(peer);
    }
  });

  it('reassembles frames that arrive in pieces, and several in one read', () => {
    const [ours, peer] = pair();
    const be = StreamSocketBackend.fromFd(ours);
    const buf = new Uint8Array(2048);
    try {
      const one = framed(Uint8Array.from({ length: 60 }, (_, i) => i));
      c.write(peer, one.subarray(0, 2), 2);
      expect(be.recv(0, buf)).to.equal(-1);
      c.write(peer, one.subarray(2, 30), 28);
      expect(be.recv(0, buf)).to.equal(-1);
      const rest = one.subarray(30);
      const two = framed(Uint8Array.of(7, 7));
      const both = new Uint8Array(rest.length + two.length);
      both.set(rest);
      both.set(two, rest.length);
      c.write(peer, both, both.length);
      expect(be.recv(0, buf)).to.equal(60);
      expect(buf[59]).to.equal(59);
      expect(be.recv(0, buf)).to.equal(2);
      expect(be.recv(0, buf)).to.equal(-1);
    } finally {
      be.close();
      c.close(peer);
    }
  });

  it('holds what the socket does not take and writes it, in order, once the peer reads (no drops)', async () => {
    const loop = new UvEventLoop();
    const [ours, peer] = pair();
    const be = StreamSocketBackend.fromFd(ours, loop);
    try {
      const frame = new Uint8Array(60000);
      let sent = 0;
      // far more than the socket buffer holds, less than the backend's limit
      while ((sent + 1) * 60004 < STREAM_MAX_PENDING / 2) {
        new DataView(frame.buffer).setUint32(0, sent);
        expect(be.send(0, frame)).to.equal(true);
        sent++;
      }
      const got: number[] = [];
      let stream = new Uint8Array(0);
      while (got.length < sent) {
        await new Promise((r) => setImmediate(r));
        const chunk = peerRead(peer);
        const next = new Uint8Array(stream.length + chunk.length);
        next.set(stream);
        next.set(chunk, stream.length);
        stream = next;
        while (stream.length >= 4 + 60000) {
          expect(new DataView(stream.buffer, stream.byteOffset).getUint32(0, false)).to.equal(60000);
          got.push(new DataView(stream.buffer, stream.byteOffset).getUint32(4, false));
          stream = stream.slice(4 + 60000);
        }
      }
      expect(got).to.deep.equal(Array.from({ length: sent }, (_, i) => i));
      expect(be.droppedFull).to.equal(0);
    } finally {
      be.close();
      c.close(peer);
    }
  });

  it('stops quietly when the peer closes: says so once, receives nothing, drops what is sent', () => {
    const [ours, peer] = pair();
    const why: string[] = [];
    const be = StreamSocketBackend.fromFd(ours, undefined, (w) => why.push(w));
    try {
      c.close(peer);
      expect(be.recv(0, new Uint8Array(64))).to.equal(-1);
      expect(why).to.have.length(1);
      expect(why[0]).to.match(/peer closed the stream/);
      expect(be.send(0, Uint8Array.of(1))).to.equal(false);
      expect(be.recv(0, new Uint8Array(64))).to.equal(-1);
      expect(why).to.have.length(1);
    } finally {
      be.close();
    }
  });

  it('refuses a socket that is not there with one line', () => {
    expect(() => StreamSocketBackend.connect('/nonexistent/passt.sock')).to.throw(
      'stream backend /nonexistent/passt.sock: connect failed: ENOENT (2)',
    );
  });
});
