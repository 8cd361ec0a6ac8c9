import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { GuestAddress, GuestRange } from '../../../core/address.js';
import type { BusDevice, Disposable } from '../../../core/bus/bus.js';
import type { PioFastPath, PioFastPathPublisher } from '../../../core/bus/fast-path.js';
import type { RangeBus } from '../../../core/bus/range-bus.js';
import type { UvEventLoop } from '../../../core/events/uv-event-loop.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { Asm, LONG_MODE_LAYOUT, setupLongMode } from '../testing.js';
import type { KvmVm } from '../vm.js';
import { WorkerVcpuRunner } from './worker-runner.js';
import { openLongModeTestVm, type LongModeTestVm } from './test-vm.js';

const CODE = LONG_MODE_LAYOUT.code;
const BASE = 0x3f8;

/**
 * A UART-shaped device: THR (offset 0) queued, LSR (offset 5) published; a read of offset 2 records how many bytes had
 * arrived.
 */
class TxDevice implements BusDevice, PioFastPathPublisher {
  readonly bytes: number[] = [];
  readonly seenAtRead: number[] = [];
  read(offset: bigint, data: Uint8Array): void {
    if (offset === 2n) this.seenAtRead.push(this.bytes.length);
    data.fill(0x01);
  }
  write(offset: bigint, data: Uint8Array): void {
    if (offset === 0n) this.bytes.push(data[0]);
  }
  attachPioFastPath(fp: PioFastPath): Disposable {
    fp.setWriteMode(0, 'queue');
    fp.setReadValue(5, 0x60);
    return { dispose: () => {} };
  }
  text(): string {
    return Buffer.from(this.bytes).toString('latin1');
  }
}

/**
 * For each character: poll LSR (in al, 0x3fd), write THR (out 0x3f8, al); then out 0x80 (unclaimed), in 0x3fa (hops),
 * hlt.
 */
function txGuest(text: string): Uint8Array {
  const a = new Asm();
  for (const ch of text)
    a.movEdx(BASE + 5)
      .inAlDx()
      .movEdx(BASE)
      .movEax(ch.charCodeAt(0))
      .outDxAl();
  return a
    .movEdx(0x80)
    .outDxAl()
    .movEdx(BASE + 2)
    .inAlDx()
    .hlt()
    .bytes();
}

for (const notify of ['eventfd', 'atomics'] as const) {
  describe(`worker fast path (${notify} notification, host /dev/kvm)`, function () {
    this.timeout(60_000);
    let vm: KvmVm;
    let mem: GuestMemory;
    let loop: UvEventLoop;
    let bus: RangeBus;
    let runner: WorkerVcpuRunner | undefined;

    before(function () {
      if (!existsSync('/dev/kvm')) this.skip(); // reason: no /dev/kvm on this host
    });
    let env: LongModeTestVm;
    beforeEach(() => {
      env = openLongModeTestVm();
      ({ vm, mem, loop, bus } = env);
    });
    afterEach(async () => {
      await runner?.stop();
      runner = undefined;
      env.close();
    });

    const run = async (
      text: string,
      ringCapacity?: number,
      blockMainMs = 0,
    ): Promise<{ dev: TxDevice; r: WorkerVcpuRunner }> => {
      const dev = new TxDevice();
      bus.register('pio', GuestRange.of(BASE, 8), dev, 'uart');
      const v = vm.createKvmVcpu(0);
      mem.write(GuestAddress.of(CODE), txGuest(text));
      setupLongMode(v, { entry: CODE });
      const r = new WorkerVcpuRunner([v], bus, notify === 'eventfd' ? loop : undefined, {
        notify,
        fastPath: { ringCapacity },
        onExit: () => 'stop',
      });
      runner = r;
      await r.start();
      if (blockMainMs > 0) {
        // Keep the main thread busy so the ring cannot be drained: the worker fills it and must hop.
        const end = Date.now() + blockMainMs;
        while (Date.now() < end && (r.stats.fastPath?.().ringFull ?? 0) === 0) {
          /* spin */
        }
      }
      await r.done;
      return { dev, r };
    };

    it('writes a string through the TX ring with no hop, in order, before the next hopping access', async () => {
      const text = 'fast path: hello from L2!';
      const { dev, r } = await run(text);
      expect(dev.text()).to.equal(text);
      expect(dev.seenAtRead, 'every queued byte arrived before the hopping read was handled').to.deep.equal([
        text.length,
      ]);
      const k = r.stats.byKind;
      expect(k['pio-fast-ring'].count).to.equal(text.length);
      expect(k['pio-fast-read'].count).to.equal(text.length);
      expect(k['pio-fast-drop'].count, 'out 0x80: unclaimed').to.equal(1);
      expect(k.io.count, 'only the read of offset 2 hopped').to.equal(1);
      expect(r.stats.hops.toJSON()).to.deep.equal({ 'pio 0x3fa in': 1 });
      expect(r.stats.fastPath?.().drained).to.equal(text.length);
    });

    it('hops when the ring is full and still delivers every byte in order', async () => {
      const text = 'abcdefghijklmnopqrstuvwxyz0123456789';
      const { dev, r } = await run(text, 4, 20_000);
      expect(dev.text()).to.equal(text);
      expect(dev.seenAtRead).to.deep.equal([text.length]);
      const fp = r.stats.fastPath!();
      expect(fp.ringFull).to.be.greaterThan(0);
      const hopped = r.stats.hops.toJSON()['pio 0x3f8 out'] ?? 0;
      expect(hopped).to.be.greaterThan(0);
      expect(r.stats.byKind['pio-fast-ring'].count + hopped).to.equal(text.length);
    });
  });
}
