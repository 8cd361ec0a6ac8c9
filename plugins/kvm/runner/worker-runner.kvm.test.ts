import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { GuestAddress, GuestRange } from '../../../core/address.js';
import type { RangeBus } from '../../../core/bus/range-bus.js';
import type { BusDevice } from '../../../core/bus/bus.js';
import type { UvEventLoop } from '../../../core/events/uv-event-loop.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import type { VcpuExit } from '../../../core/hypervisor/hypervisor.js';
import { Asm, LONG_MODE_LAYOUT, setupLongMode } from '../testing.js';
import type { KvmVm } from '../vm.js';
import type { KvmVcpu } from '../vcpu.js';
import { WorkerVcpuRunner } from './worker-runner.js';
import { openLongModeTestVm, type LongModeTestVm } from './test-vm.js';
import { x86Vcpu } from '../../x86/hypervisor/extension.js';
import { startupTimings } from '../../../core/vmm/timings.js';

const CODE = LONG_MODE_LAYOUT.code;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A bus device that records writes and answers reads with a fixed value. */
class Recorder implements BusDevice {
  readonly writes: { offset: bigint; value: number; size: number }[] = [];
  constructor(private readonly readValue = 0) {}
  read(_offset: bigint, data: Uint8Array): void {
    Buffer.from(data.buffer, data.byteOffset, data.length).writeUIntLE(this.readValue, 0, Math.min(data.length, 6));
  }
  write(offset: bigint, data: Uint8Array): void {
    this.writes.push({ offset, value: Buffer.from(data).readUIntLE(0, Math.min(data.length, 6)), size: data.length });
  }
}

for (const notify of ['eventfd', 'atomics'] as const) {
  describe(`WorkerVcpuRunner (${notify} notification, host /dev/kvm)`, function () {
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

    const make = (
      vcpus: KvmVcpu[],
      onExit?: (i: number, e: VcpuExit) => 'continue' | 'stop' | void,
    ): WorkerVcpuRunner => {
      runner = new WorkerVcpuRunner(vcpus, bus, notify === 'eventfd' ? loop : undefined, { notify, onExit });
      return runner;
    };

    it('dispatches PIO out/in to the bus on the main thread and reports hlt', async () => {
      const dev = new Recorder(0x5a5a1234);
      bus.register('pio', GuestRange.of(0x3f8n, 8n), dev, 'uart');
      const v = vm.createKvmVcpu(0);
      const a = new Asm().movEdx(0x3f8);
      for (const ch of [0x68, 0x69]) a.movEax(ch).outDxAl();
      a.movEdx(0x3fc).inEaxDx().movEdx(0x3f9).outDxEax().hlt();
      mem.write(GuestAddress.of(CODE), a.bytes());
      setupLongMode(v, { entry: CODE });
      const exits: string[] = [];
      const r = make([v], (i, e) => {
        exits.push(`${i}:${e.kind}`);
        return 'stop';
      });
      await r.start();
      await r.done;
      expect(dev.writes.map((w) => [w.offset, w.value])).to.deep.equal([
        [0n, 0x68],
        [0n, 0x69],
        [1n, 0x5a5a1234],
      ]);
      expect(exits).to.deep.equal(['0:hlt']);
      expect(r.stats.byKind.io.count).to.equal(4);
      expect(r.stats.byKind.hlt.count).to.equal(1);
    });

    it('prewarmed threads run the vCPUs created after them; the first KVM_RUN is marked; stop() ends a spare', async () => {
      const dev = new Recorder();
      bus.register('pio', GuestRange.of(0x3f8n, 8n), dev, 'uart');
      runner = new WorkerVcpuRunner(vm, bus, notify === 'eventfd' ? loop : undefined, { notify });
      const r = runner;
      r.prewarm(2); // one more than the VM will have
      const v = vm.createKvmVcpu(0);
      mem.write(GuestAddress.of(CODE), new Asm().movEdx(0x3f8).movEax(0x21).outDxAl().hlt().bytes());
      setupLongMode(v, { entry: CODE });
      startupTimings.clear();
      await r.start();
      await r.done;
      expect(dev.writes.map((w) => w.value)).to.deep.equal([0x21]);
      await until(() => startupTimings.marks.some((m) => m.step === 'first KVM_RUN (vCPU 0)'), 'the first-run mark');
      const left = (r as unknown as { spare: { threadId: number }[] }).spare;
      expect(left).to.have.length(1);
      const exited = new Promise((res) => (left[0] as unknown as NodeJS.EventEmitter).once('exit', res));
      await r.stop();
      await exited;
    });

    it('stop() right after prewarm(), while the spares still load their code, ends them without aborting', async () => {
      // terminate() during koffi's load aborted the whole process once (napi_throw on a terminating isolate, CI
      // 2026-12-07); that race does not reproduce on demand, so this checks the exit path: every spare ends, exit 0
      runner = new WorkerVcpuRunner(vm, bus, notify === 'eventfd' ? loop : undefined, { notify });
      const r = runner;
      r.prewarm(3);
      const spares = [...(r as unknown as { spare: NodeJS.EventEmitter[] }).spare];
      const exited = Promise.all(spares.map((w) => new Promise((res) => w.once('exit', res))));
      await r.stop();
      expect(await exited).to.deep.equal([0, 0, 0]);
    });

    it('dispatches MMIO and keeps running when a device throws', async () => {
      const ok = new Recorder(0x11223344);
      bus.register('mmio', GuestRange.of(0x3000_0000n, 0x1000n), ok, 'ok');
      bus.register(
        'mmio',
        GuestRange.of(0x3000_1000n, 0x1000n),
        {
          read: () => {
            throw new Error('boom');
          },
          write: () => {
            throw new Error('boom');
          },
        },
        'bad',
      );
      const v = vm.createKvmVcpu(0);
      const code = new Asm()
        .movRbx(0x3000_0010n)
        .loadEax()
        .movRbx(0x3000_0020n)
        .storeEax() // copy a register of 'ok'
        .movRbx(0x3000_1000n)
        .loadEax()
        .movRbx(0x3000_0030n)
        .storeEax() // read of 'bad' -> all ones
        .hlt()
        .bytes();
      mem.write(GuestAddress.of(CODE), code);
      setupLongMode(v, { entry: CODE });
      const errors: unknown[] = [];
      const r = make([v]);
      r.events.on('error', (e) => errors.push(e));
      await r.start();
      await r.done;
      expect(ok.writes).to.deep.equal([
        { offset: 0x20n, value: 0x11223344, size: 4 },
        { offset: 0x30n, value: 0xffffffff, size: 4 },
      ]);
      expect(bus.deviceErrors.mmio + errors.length).to.be.greaterThan(0);
    });

    it('runs several vCPUs at once', async () => {
      const dev = new Recorder();
      bus.register('pio', GuestRange.of(0x80n, 4n), dev, 'post');
      const code = new Asm().movEdx(0x80).outDxEax().hlt().bytes();
      mem.write(GuestAddress.of(CODE), code);
      const vcpus = [0, 1, 2, 3].map((i) => {
        const v = vm.createKvmVcpu(i);
        setupLongMode(v, {
          entry: CODE,
          stack: LONG_MODE_LAYOUT.stack - BigInt(i * 0x100),
          regs: { rax: BigInt(0x100 + i) },
        });
        return v;
      });
      const halted: number[] = [];
      const r = make(vcpus, (i, e) => {
        if (e.kind === 'hlt') halted.push(i);
      });
      await r.start();
      await r.done;
      expect(dev.writes.map((w) => w.value).sort()).to.deep.equal([0x100, 0x101, 0x102, 0x103]);
      expect(halted.sort()).to.deep.equal([0, 1, 2, 3]);
    });

    it('pauses spinning vCPUs with a kick, resumes them, and stops them', async () => {
      // Two user-mode (native under PVM) guests, each incrementing its own counter forever.
      // vCPU 2 is the control: its own runner, never paused, counting while the others should not
      const counters = [0x20_0000n, 0x20_1000n, 0x20_2000n];
      const [v0, v1, v2] = counters.map((addr, i) => {
        const at = CODE + BigInt(i * 0x100);
        mem.write(GuestAddress.of(at), new Asm().movRbx(addr).label('l').incQword().jmp('l').bytes());
        const v = vm.createKvmVcpu(i);
        setupLongMode(v, { entry: at, cpl: 3 });
        return v;
      });
      const count = (i: number): bigint => mem.readU64(GuestAddress.of(counters[i]));
      const control = new WorkerVcpuRunner([v2!], bus, notify === 'eventfd' ? loop : undefined, { notify });
      /** Waits until the control vCPU counted a million more: time enough for any vCPU that still runs to move. */
      const controlCounts = async (what: string) => {
        const c = count(2);
        await until(() => count(2) > c + 1_000_000n, `the control vCPU to count on ${what}`);
      };
      const r = make([v0!, v1!]);
      await control.start();
      try {
        await r.start();
        await until(() => count(0) > 0n && count(1) > 0n, 'both guests to spin');
        const states = await r.vcpuStates(); // kicks each spinning vCPU and reads on its thread
        expect(states.map((s) => s.mpState)).to.deep.equal(['runnable', 'runnable']);
        const c0 = count(0);
        await until(() => count(0) > c0, 'the guest to continue after the state query');
        await r.pause();
        const frozen = [count(0), count(1)];
        await controlCounts('while the others are paused');
        expect([count(0), count(1)]).to.deep.equal(frozen);
        await r.resume();
        await until(() => count(0) > frozen[0] && count(1) > frozen[1], 'guests to run again');
        await r.stop();
        expect(r.runningCount).to.equal(0);
        const after = [count(0), count(1)];
        await controlCounts('after the others stopped');
        expect([count(0), count(1)]).to.deep.equal(after);
        expect(r.stats.byKind.intr?.count ?? 0).to.be.greaterThan(0);
      } finally {
        await control.stop();
      }
    });

    it('a pause right after a resume, before the vCPU thread saw it, is acknowledged (auto-converge does this)', async () => {
      const counter = GuestAddress.of(0x20_0000n);
      mem.write(GuestAddress.of(CODE), new Asm().movRbx(0x20_0000n).label('l').incQword().jmp('l').bytes());
      const v = vm.createKvmVcpu(0);
      setupLongMode(v, { entry: CODE, cpl: 3 });
      const r = make([v]);
      await r.start();
      await until(() => mem.readU64(counter) > 0n, 'the guest to spin');
      for (let i = 0; i < 20; i++) {
        await r.pause();
        void r.resume();
        const again = r.pause(); // the same turn: the held thread has not woken to the RUN yet
        const acked = await Promise.race([again.then(() => true), sleep(10_000).then(() => false)]);
        expect(acked, `pause ${i} after a resume acknowledged`).to.equal(true);
      }
      await r.resume();
      const c = mem.readU64(counter);
      await until(() => mem.readU64(counter) > c, 'the guest to spin again');
    });

    it('pauses after the I/O instruction its last exit stopped at completed (the state a snapshot saves)', async () => {
      // `in eax, 0x71` then `out 0x80, eax`: the IN's handler pauses the VM. The saved registers must show the IN
      // done (RAX = the answer, RIP past it): a restored VM would otherwise run it again (a second UART IIR read
      // that lost its THRE interrupt stalled a migrated Linux guest's console).
      let paused: Promise<void> | undefined;
      const answer = 0x5a5a1234;
      bus.register(
        'pio',
        GuestRange.of(0x70n, 8n),
        {
          read: (_o, data) => {
            Buffer.from(data.buffer, data.byteOffset, data.length).writeUIntLE(answer, 0, data.length);
            paused ??= runner!.pause();
          },
          write: () => {},
        },
        'pauser',
      );
      const post = new Recorder();
      bus.register('pio', GuestRange.of(0x80n, 4n), post, 'post');
      const v = vm.createKvmVcpu(0);
      const inAt = CODE + 5n; // after `mov edx, 0x71`
      mem.write(GuestAddress.of(CODE), new Asm().movEdx(0x71).inEaxDx().movEdx(0x80).outDxEax().hlt().bytes());
      setupLongMode(v, { entry: CODE });
      const r = make([v], () => 'stop');
      await r.start();
      await until(() => paused !== undefined, 'the IN exit');
      await paused;
      const regs = x86Vcpu(v).getRegs();
      expect(regs.rip, 'RIP is past the IN').to.equal(inAt + 1n);
      expect(regs.rax & 0xffff_ffffn, 'RAX holds the answer').to.equal(BigInt(answer));
      expect(post.writes, 'nothing after the IN ran').to.deep.equal([]);
      await r.resume();
      await r.done;
      expect(post.writes.map((w) => w.value)).to.deep.equal([answer]);
    });

    it('stops vCPUs halted inside the kernel (in-kernel irqchip: hlt does not exit)', async () => {
      vm.createIrqChip();
      const dev = new Recorder();
      bus.register('pio', GuestRange.of(0x80n, 1n), dev, 'post');
      const code = new Asm().movEdx(0x80).movEax(1).outDxAl().hlt().bytes();
      mem.write(GuestAddress.of(CODE), code);
      const vcpus = [0, 1].map((i) => {
        const v = vm.createKvmVcpu(i);
        setupLongMode(v, { entry: CODE });
        // With an in-kernel LAPIC, APs start in 'uninitialized' (waiting for INIT/SIPI).
        if (i > 0) {
          expect(v.getMpState()).to.equal('uninitialized');
          v.setMpState('runnable');
        }
        return v;
      });
      const exits: string[] = [];
      const r = make(vcpus, (_i, e) => {
        exits.push(e.kind);
      });
      await r.start();
      await until(() => dev.writes.length === 2, 'both vCPUs to reach hlt');
      expect(r.runningCount).to.equal(2);
      // Halted in the kernel with interrupts off: what the x86 machine reads as poweroff.
      let states = await r.vcpuStates();
      for (let n = 0; n < 1000 && states.some((s) => s.mpState !== 'halted'); n++) {
        await sleep(5);
        states = await r.vcpuStates();
      }
      // rip: past the hlt, read on the vCPU's thread and carried back in two shared words
      expect(states).to.deep.equal(
        [0, 1].map((index) => ({
          index,
          mpState: 'halted',
          interruptsEnabled: false,
          rip: CODE + BigInt(code.length),
        })),
      );
      await r.stop();
      expect(r.runningCount).to.equal(0);
      expect(exits).to.deep.equal([]);
    });

    it("re-enters the guest when the exit handler answers 'continue'", async () => {
      const dev = new Recorder();
      bus.register('pio', GuestRange.of(0x80n, 1n), dev, 'post');
      const v = vm.createKvmVcpu(0);
      mem.write(GuestAddress.of(CODE), new Asm().hlt().movEdx(0x80).movEax(7).outDxAl().hlt().bytes());
      setupLongMode(v, { entry: CODE });
      let hlts = 0;
      const r = make([v], () => (++hlts === 1 ? 'continue' : 'stop'));
      await r.start();
      await r.done;
      expect(hlts).to.equal(2);
      expect(dev.writes.map((w) => w.value)).to.deep.equal([7]);
    });
  });
}
