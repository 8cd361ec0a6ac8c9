import { expect } from 'chai';
import { restoreSnapshot, takeSnapshot } from '../../core/state/persist.js';
import fc from 'fast-check';
import type { MmioFastPath, MmioWriteMode, SharedWord } from '../../core/bus/fast-path.js';
import { EchoDevice, MockSplitQueue } from '../virtio/testing.js';
import { VirtioMmioTransport } from './device.js';
import { INT_CONFIG, INT_VRING, Reg } from './registers.js';
import { MmioDriver, mmioTestHost } from './testing.js';

/**
 * A runner's shared word as a vCPU thread sees it: `guestRead`/`guestAck` do what the kvm worker
 * does for a 4-byte access at InterruptStatus / InterruptACK (an atomic load, an atomic AND).
 */
class SharedWordFastPath implements MmioFastPath {
  readonly cell = new Int32Array(new SharedArrayBuffer(4));
  shared: { read: number; clear: number; mask: number } | undefined;
  readonly writes = new Map<number, MmioWriteMode>();
  readonly reads = new Map<number, number | undefined>();
  constructor(private readonly give = true) {}
  setReadValue(offset: number, value: number | undefined): void {
    this.reads.set(offset, value);
  }
  setWriteMode(offset: number, mode: MmioWriteMode): void {
    this.writes.set(offset, mode);
  }
  shareClearableWord(read: number, clear: number, mask: number, initial: number): SharedWord | undefined {
    if (!this.give) return undefined;
    this.shared = { read, clear, mask };
    const c = this.cell;
    Atomics.store(c, 0, initial);
    return {
      load: () => Atomics.load(c, 0) >>> 0,
      store: (v) => {
        Atomics.store(c, 0, v | 0);
      },
      or: (b) => Atomics.or(c, 0, b | 0) >>> 0,
      clear: (b) => Atomics.and(c, 0, ~b) >>> 0,
    };
  }
  guestRead(): number {
    return Atomics.load(this.cell, 0) >>> 0;
  }
  guestAck(v: number): void {
    Atomics.and(this.cell, 0, ~(v & this.shared!.mask));
  }
}

function setup(give = true) {
  const t = mmioTestHost();
  const dev = new EchoDevice('echo0', t.events.loop, {});
  const line = { onEdge: (): void => undefined };
  const transport = new VirtioMmioTransport(dev, {
    memory: () => t.memory,
    queueEvents: dev.queueMaxSizes.map(() => t.events.factory.create({ nonBlocking: true })),
    line: { trigger: () => line.onEdge() },
  });
  const fp = new SharedWordFastPath(give);
  const handle = transport.attachMmioFastPath(fp);
  const drv = new MmioDriver(transport);
  drv.init([new MockSplitQueue(t.memory, 16)]);
  return { transport, fp, handle, drv, line };
}

describe('virtio-mmio transport: InterruptStatus in a shared word', () => {
  it('moves InterruptStatus into the word (status and ACK offsets, mask of the two bits) and publishes nothing else for them', () => {
    const { transport, fp } = setup();
    expect(fp.shared).to.deep.equal({
      read: Reg.InterruptStatus,
      clear: Reg.InterruptACK,
      mask: INT_VRING | INT_CONFIG,
    });
    expect(transport.sharesInterruptStatus).to.equal(true);
    expect(fp.reads.size).to.equal(0);
    expect(fp.writes.size).to.equal(0);
  });

  it('sets the bit in the word before the line fires; the bus path reads and clears the same word', () => {
    const { transport, fp, drv, line } = setup();
    const atEdge: number[] = [];
    line.onEdge = () => {
      atEdge.push(fp.guestRead());
    };
    transport.interrupt.signalUsedQueue(0);
    transport.interrupt.signalConfigChange();
    expect(atEdge).to.deep.equal([INT_VRING, INT_VRING | INT_CONFIG]);
    expect(drv.read32(Reg.InterruptStatus)).to.equal(INT_VRING | INT_CONFIG);
    fp.guestAck(INT_VRING); // on the vCPU's thread
    expect(drv.read32(Reg.InterruptStatus)).to.equal(INT_CONFIG);
    drv.write32(Reg.InterruptACK, INT_CONFIG); // hopped to the bus
    expect(fp.guestRead()).to.equal(0);
  });

  it('a bit raised after the guest read its status survives the guest ACK of what it read', () => {
    const { transport, fp } = setup();
    transport.interrupt.signalUsedQueue(0);
    const seen = fp.guestRead();
    transport.interrupt.signalConfigChange(); // after the read, before the ACK
    fp.guestAck(seen);
    expect(fp.guestRead()).to.equal(INT_CONFIG);
    // And the reverse order: ACK first, then a new completion: the bit is set again (no deferred clear).
    fp.guestAck(INT_CONFIG);
    transport.interrupt.signalUsedQueue(0);
    expect(fp.guestRead()).to.equal(INT_VRING);
  });

  it('ACK of bits outside the mask changes nothing; reset and snapshot/restore go through the word', () => {
    const { transport, fp, drv } = setup();
    transport.interrupt.signalUsedQueue(0);
    fp.guestAck(0xffff_fffc);
    expect(fp.guestRead()).to.equal(INT_VRING);
    const snap = takeSnapshot(transport);
    transport.reset();
    expect(fp.guestRead()).to.equal(0);
    restoreSnapshot(transport, snap);
    expect(fp.guestRead()).to.equal(INT_VRING);
    expect(drv.read32(Reg.InterruptStatus)).to.equal(INT_VRING);
  });

  it('keeps the word after the handle is disposed (a vCPU may still act on it)', () => {
    const { transport, fp, handle, drv } = setup();
    handle.dispose();
    transport.interrupt.signalUsedQueue(0);
    expect(fp.guestRead()).to.equal(INT_VRING);
    fp.guestAck(INT_VRING);
    expect(drv.read32(Reg.InterruptStatus)).to.equal(0);
  });

  it('starts the word with the status it had (a bit raised before the attach is not lost)', () => {
    const t = mmioTestHost();
    const dev = new EchoDevice('echo2', t.events.loop, {});
    const transport = new VirtioMmioTransport(dev, {
      memory: () => t.memory,
      queueEvents: dev.queueMaxSizes.map(() => t.events.factory.create({ nonBlocking: true })),
      line: { trigger: () => undefined },
    });
    new MmioDriver(transport).init([new MockSplitQueue(t.memory, 16)]);
    transport.interrupt.signalUsedQueue(0);
    const fp = new SharedWordFastPath();
    transport.attachMmioFastPath(fp);
    expect(fp.guestRead()).to.equal(INT_VRING);
  });

  it('without a shared word it falls back to the published value and an ACK that reaches the device at once', () => {
    const { transport, fp, drv } = setup(false);
    expect(transport.sharesInterruptStatus).to.equal(false);
    expect(fp.writes.get(Reg.InterruptACK)).to.equal('device');
    transport.interrupt.signalUsedQueue(0);
    expect(fp.reads.get(Reg.InterruptStatus)).to.equal(INT_VRING);
    drv.write32(Reg.InterruptACK, INT_VRING);
    expect(fp.reads.get(Reg.InterruptStatus)).to.equal(0);
  });
});

/**
 * A model of Linux's vm_interrupt on an edge-triggered line: the handler reads InterruptStatus,
 * writes it back to InterruptACK, then (if VRING was set) consumes every completion. The device
 * completes work and raises VRING at any point in between. Every completion must be consumed once
 * the guest has handled all pending interrupts: none is lost.
 */
type Step = 'complete' | 'guest' | 'main';
function lostCompletions(steps: Step[], ackMode: 'atomic' | 'deferred'): number {
  const { transport, fp, line } = setup();
  let work = 0; // completions in the used ring the guest has not consumed
  let latched = false; // the irqchip's pending edge
  line.onEdge = () => {
    latched = true;
  };
  let phase: 'idle' | 'read' | 'ack' | 'process' = 'idle';
  let seen = 0;
  const deferred: number[] = []; // ACKs waiting for "the main thread" (the old queued ACK)
  const guestStep = (): void => {
    switch (phase) {
      case 'idle':
        if (latched) {
          latched = false;
          phase = 'read';
        }
        break;
      case 'read':
        seen = fp.guestRead();
        phase = 'ack';
        break;
      case 'ack':
        if (ackMode === 'atomic') fp.guestAck(seen);
        else deferred.push(seen);
        phase = 'process';
        break;
      case 'process':
        if (seen & INT_VRING) work = 0;
        phase = 'idle';
        break;
    }
  };
  const mainStep = (): void => {
    const v = deferred.shift();
    if (v !== undefined) fp.guestAck(v);
  };
  for (const s of steps) {
    if (s === 'complete') {
      work++;
      transport.interrupt.signalUsedQueue(0);
    } else if (s === 'main') mainStep();
    else guestStep();
  }
  // Quiesce: deliver what is queued, let the guest handle every pending interrupt.
  for (let i = 0; i < 1000 && (latched || phase !== 'idle' || deferred.length > 0); i++) {
    mainStep();
    guestStep();
  }
  return work;
}

describe('virtio-mmio transport: interleaved raise / status read / ACK (model of the Linux driver)', () => {
  const steps = fc.array(fc.constantFrom<Step>('complete', 'guest', 'main'), { maxLength: 40 });

  it('no completion is lost whatever the interleaving when the ACK clears the shared word at once', () => {
    fc.assert(
      fc.property(steps, (s) => lostCompletions(s, 'atomic') === 0),
      { numRuns: 500 },
    );
  });

  it('the model does catch the old deferred ACK (it loses a completion; random interleavings find it too)', () => {
    // complete, guest takes the edge, reads VRING, queues its ACK, consumes; a new completion raises
    // VRING (still set) and an edge; then the main thread applies the ACK: the next handler reads 0.
    const bad: Step[] = ['complete', 'guest', 'guest', 'guest', 'guest', 'complete', 'main'];
    expect(lostCompletions(bad, 'deferred')).to.equal(1);
    expect(lostCompletions(bad, 'atomic')).to.equal(0);
    // fc.check stops at the first counterexample; 500 runs missed it about once in a few dozen seeds.
    const r = fc.check(
      fc.property(steps, (x) => lostCompletions(x, 'deferred') === 0),
      { numRuns: 20_000 },
    );
    expect(r.failed).to.equal(true);
  });
});
