import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { GuestAddress, GuestRange } from '../../../core/address.js';
import type { BusDevice } from '../../../core/bus/bus.js';
import { RangeBus } from '../../../core/bus/range-bus.js';
import type { UvEventLoop } from '../../../core/events/uv-event-loop.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { Asm, LONG_MODE_LAYOUT, setupLongMode } from '../testing.js';
import type { KvmVm } from '../vm.js';
import { WorkerVcpuRunner } from './worker-runner.js';
import { openLongModeTestVm, type LongModeTestVm } from './test-vm.js';
import { IRQ_ACK, IRQ_STATUS, IrqDevice, SharedIrqDevice } from './irq-test-devices.js';

const CODE = LONG_MODE_LAYOUT.code;
const WIN = 0x3000_0000n;
const STATUS = IRQ_STATUS,
  ACK = IRQ_ACK;

describe('worker fast path: MMIO (host /dev/kvm)', function () {
  this.timeout(60_000);
  let vm: KvmVm;
  let mem: GuestMemory;
  let loop: UvEventLoop;
  let runner: WorkerVcpuRunner | undefined;

  before(function () {
    if (!existsSync('/dev/kvm')) this.skip(); // reason: no /dev/kvm on this host
  });
  let env: LongModeTestVm;
  beforeEach(() => {
    env = openLongModeTestVm();
    ({ vm, mem, loop } = env);
  });
  afterEach(async () => {
    await runner?.stop();
    runner = undefined;
    env.close();
  });

  /** Runs `code` on one vCPU with `dev` at WIN and a reporting port at 0x80 until it halts. */
  async function runWith(dev: BusDevice, code: Uint8Array): Promise<{ reported: number[]; r: WorkerVcpuRunner }> {
    const bus = new RangeBus();
    bus.register('mmio', GuestRange.of(WIN, 0x1000), dev, 'virtio0');
    const reported: number[] = [];
    bus.register(
      'pio',
      GuestRange.of(0x80, 4),
      {
        read: () => {},
        write: (_o, d) => {
          reported.push(new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0, true));
        },
      },
      'report',
    );
    const v = vm.createKvmVcpu(0);
    mem.write(GuestAddress.of(CODE), code);
    setupLongMode(v, { entry: CODE });
    const r = new WorkerVcpuRunner([v], bus, loop, { notify: 'eventfd', onExit: () => 'stop' });
    runner = r;
    await r.start();
    await r.done;
    return { reported, r };
  }

  it('reads the status from the mirror, queues the ACK, and a later read sees the ACK applied', async () => {
    const dev = new IrqDevice(5);
    const code = new Asm()
      .movRbx(WIN + BigInt(STATUS))
      .loadEax() // status: 5, answered on the worker
      .movRbx(WIN + BigInt(ACK))
      .storeEax() // ACK 5: queued
      .movRbx(WIN + BigInt(STATUS))
      .loadEax() // must read 0 (hops, or the mirror after the drain)
      .movEdx(0x80)
      .outDxEax() // report it (hops)
      .hlt()
      .bytes();
    const { reported, r } = await runWith(dev, code);
    expect(reported).to.deep.equal([0]);
    expect(dev.log[0], 'the first read never reached the device').to.equal('w64=5');
    expect(dev.log.filter((l) => l === 'w64=5')).to.have.length(1);
    const k = r.stats.byKind;
    expect(k['mmio-fast-ring'].count).to.equal(1);
    expect(k['mmio-fast-read'].count).to.be.within(1, 2);
    expect(
      k['mmio-fast-read'].count + (r.stats.hops.toJSON()[`mmio 0x${(WIN + BigInt(STATUS)).toString(16)} read`] ?? 0),
    ).to.equal(2);
  });

  it('shared word: the guest reads the status and ACKs on the worker; the ACK is applied before its next read', async () => {
    const dev = new SharedIrqDevice(5, 7);
    const code = new Asm()
      .movRbx(WIN + BigInt(STATUS))
      .loadEax() // 5, from the word on the worker
      .movEdx(0x80)
      .outDxEax() // report it (hops)
      .movEax(1)
      .movRbx(WIN + BigInt(ACK))
      .storeEax() // ACK bit 0 on the worker
      .movRbx(WIN + BigInt(STATUS))
      .loadEax() // must read 4
      .movEdx(0x80)
      .outDxEax()
      .hlt()
      .bytes();
    const { reported, r } = await runWith(dev, code);
    expect(dev.word, 'the runner shared a word').to.not.equal(undefined);
    expect(reported).to.deep.equal([5, 4]);
    expect(dev.word!.load()).to.equal(4);
    expect(
      dev.log.filter((l) => l.startsWith('w64') || l === 'r60'),
      'neither the reads nor the ACK reached the device',
    ).to.deep.equal([]);
    expect(r.stats.byKind['mmio-fast-read'].count).to.equal(3);
  });
});
