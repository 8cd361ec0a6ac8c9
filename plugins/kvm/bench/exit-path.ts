/**
 * Measures the cost of one PIO exit round trip on this host's KVM:
 *   inline-raw     KVM_RUN + exit on the main thread, exit reason only
 *   inline-decode  the same plus kvm_run decoding and a Bus dispatch (what InlineVcpuRunner does)
 *   worker-eventfd WorkerVcpuRunner: worker -> eventfd -> EventLoop.watch -> Bus -> Atomics.notify -> worker
 *   worker-atomics WorkerVcpuRunner: worker -> Atomics.waitAsync on the main thread -> Bus -> worker
 * The guest runs in user mode (native under PVM) doing `out dx, al` in a loop.
 * Usage: node .build/<you>/plugins/kvm/bench/exit-path.js [exits=20000] [rounds=3]
 */
import { GuestAddress, GuestRange } from '../../../core/address.js';
import { RangeBus } from '../../../core/bus/range-bus.js';
import { UvEventLoop } from '../../../core/events/uv-event-loop.js';
import { createAnonymousMmapMemory } from '../../../core/memory/backends/anonymous-mmap.js';
import { KvmHypervisor } from '../hypervisor.js';
import { mapGuestMemory } from '../memory.js';
import { WorkerVcpuRunner } from '../runner/worker-runner.js';
import { Asm, LONG_MODE_LAYOUT, setupLongMode, writeLongModeTables } from '../testing.js';

const N = Number(process.argv[2] ?? 20000);
const ROUNDS = Number(process.argv[3] ?? 3);

type Mode = 'inline-raw' | 'inline-decode' | 'worker-eventfd' | 'worker-atomics';

async function measure(mode: Mode): Promise<number> {
  const hv = new KvmHypervisor();
  const vm = hv.createKvmVm();
  const mem = createAnonymousMmapMemory({ backend: 'anonymous', regions: [{ start: 0n, size: 4n << 20n }] });
  const loop = new UvEventLoop();
  try {
    mapGuestMemory(vm, mem);
    writeLongModeTables(mem);
    mem.write(GuestAddress.of(LONG_MODE_LAYOUT.code), new Asm().movEdx(0x80).label('l').outDxAl().jmp('l').bytes());
    const vcpu = vm.createKvmVcpu(0);
    setupLongMode(vcpu, { entry: LONG_MODE_LAYOUT.code, cpl: 3 });
    const bus = new RangeBus();
    let count = 0;
    let finish: () => void = () => {};
    const finished = new Promise<void>((r) => {
      finish = r;
    });
    bus.register(
      'pio',
      GuestRange.of(0x80n, 1n),
      {
        read: () => {},
        write: () => {
          if (++count === N) finish();
        },
      },
      'post',
    );
    for (let i = 0; i < 200; i++) vcpu.runRaw(); // warm up
    const t0 = process.hrtime.bigint();
    if (mode === 'inline-raw') {
      for (let i = 0; i < N; i++) vcpu.runRaw();
    } else if (mode === 'inline-decode') {
      for (let i = 0; i < N; i++) {
        const e = vcpu.run();
        if (e.kind === 'io') bus.write('pio', BigInt(e.port), e.data);
      }
    } else {
      const runner = new WorkerVcpuRunner([vcpu], bus, mode === 'worker-eventfd' ? loop : undefined, {
        notify: mode === 'worker-eventfd' ? 'eventfd' : 'atomics',
      });
      await runner.start();
      await finished;
      const t1 = process.hrtime.bigint();
      await runner.stop();
      return Number(t1 - t0) / N / 1000;
    }
    return Number(process.hrtime.bigint() - t0) / N / 1000;
  } finally {
    loop.dispose();
    vm.close();
    mem.close();
    hv.close();
  }
}

const modes: Mode[] = ['inline-raw', 'inline-decode', 'worker-eventfd', 'worker-atomics'];
const results: Record<string, number[]> = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const m of modes) (results[m] ??= []).push(await measure(m));
}
console.log(`PIO exit round trip, ${N} exits x ${ROUNDS} rounds (µs per exit; min / median)`);
for (const m of modes) {
  const v = [...results[m]].sort((a, b) => a - b);
  console.log(`${m.padEnd(16)} ${v[0].toFixed(2).padStart(8)} ${v[Math.floor(v.length / 2)].toFixed(2).padStart(8)}`);
}
