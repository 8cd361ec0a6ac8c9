import { GuestAddress, GuestRange } from '../../../core/address.js';
import { RangeBus } from '../../../core/bus/range-bus.js';
import { UvEventLoop } from '../../../core/events/uv-event-loop.js';
import { createAnonymousMmapMemory } from '../../../core/memory/backends/anonymous-mmap.js';
import { InlineVcpuRunner } from '../../../core/testing/inline-vcpu-runner.js';
import { KvmHypervisor } from '../../../plugins/kvm/hypervisor.js';
import { mapGuestMemory } from '../../../plugins/kvm/memory.js';
import { WorkerVcpuRunner } from '../../../plugins/kvm/runner/worker-runner.js';
import { Asm, LONG_MODE_LAYOUT, setupLongMode, writeLongModeTables } from '../../../plugins/kvm/testing.js';

/** How our side services the exits. */
export type ExitPath = 'inline' | 'worker' | 'worker-fast' | 'koffi-raw';

/** The I/O port the exit benchmark's guest loop writes to (one PIO exit per write). */
export const EXIT_PORT = 0x80;

/**
 * One measurement of our PIO exit round trip: KvmHypervisor + a vCPU runner, a CPL3 guest
 * (IOPL=3, native under PVM) doing `out dx, al; jmp` forever, a Bus device counting the writes.
 *   inline: InlineVcpuRunner — koffi sync KVM_RUN, decode, Bus dispatch, all on the main thread;
 *   worker: WorkerVcpuRunner (eventfd notify) — KVM_RUN on a worker, each exit hops to the main
 *           thread's Bus and back;
 *   worker-fast: WorkerVcpuRunner with the guest's port unclaimed on the Bus: the worker's fast
 *           path completes every exit itself (pio-fast-drop), no hop; timed from the worker's
 *           first fast exit (worker start-up excluded) by polling the shared exit counters;
 *   koffi-raw: the floor of the inline path — KvmVcpu.runRaw() (koffi ioctl + exit reason) in a
 *           loop, no decoding, no Bus: shows what the runner and Bus add on top.
 * Returns microseconds per exit over `exits` exits (after a 200-exit warm-up).
 */
export async function measureOurs(path: ExitPath, exits: number): Promise<number> {
  const hv = new KvmHypervisor();
  const vm = hv.createKvmVm();
  const mem = createAnonymousMmapMemory({ backend: 'anonymous', regions: [{ start: 0n, size: 4n << 20n }] });
  const loop = new UvEventLoop();
  try {
    mapGuestMemory(vm, mem);
    writeLongModeTables(mem);
    mem.write(
      GuestAddress.of(LONG_MODE_LAYOUT.code),
      new Asm().movEdx(EXIT_PORT).label('l').outDxAl().jmp('l').bytes(),
    );
    const vcpu = vm.createKvmVcpu(0);
    setupLongMode(vcpu, { entry: LONG_MODE_LAYOUT.code, cpl: 3 });
    for (let i = 0; i < 200; i++) vcpu.runRaw();
    if (path === 'koffi-raw') {
      const t = process.hrtime.bigint();
      for (let i = 0; i < exits; i++) vcpu.runRaw();
      return Number(process.hrtime.bigint() - t) / exits / 1000;
    }
    if (path === 'worker-fast') return await measureWorkerFast(vcpu, loop, exits);
    const bus = new RangeBus();
    let count = 0;
    let done: () => void = () => {};
    const finished = new Promise<void>((r) => {
      done = r;
    });
    let t1 = 0n;
    bus.register(
      'pio',
      GuestRange.of(BigInt(EXIT_PORT), 1n),
      {
        read: () => {},
        write: () => {
          if (++count === exits) {
            t1 = process.hrtime.bigint();
            done();
          }
        },
      },
      'bench-port',
    );
    const runner =
      path === 'inline'
        ? new InlineVcpuRunner([vcpu], bus, {
            onExit: () => {
              if (count >= exits) void runner.stop();
            },
          })
        : new WorkerVcpuRunner([vcpu], bus, loop, { notify: 'eventfd' });
    const t0 = process.hrtime.bigint();
    await runner.start();
    await finished;
    await runner.stop();
    return Number(t1 - t0) / exits / 1000;
  } finally {
    loop.dispose();
    vm.close();
    mem.close();
    hv.close();
  }
}

/** Polls the runner's shared exit counters every 2 ms; µs per fast exit between the first and the last poll. */
async function measureWorkerFast(
  vcpu: import('../../../plugins/kvm/vcpu.js').KvmVcpu,
  loop: UvEventLoop,
  exits: number,
): Promise<number> {
  const runner = new WorkerVcpuRunner([vcpu], new RangeBus(), loop, { notify: 'eventfd' });
  const fastCount = (): number => runner.stats.byKind['pio-fast-drop']?.count ?? 0;
  await runner.start();
  try {
    const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
    let c0 = fastCount();
    while (c0 === 0) {
      await sleep(2);
      c0 = fastCount();
    }
    const t0 = process.hrtime.bigint();
    let c1 = c0;
    while (c1 - c0 < exits) {
      await sleep(2);
      c1 = fastCount();
    }
    const t1 = process.hrtime.bigint();
    const hopped = runner.stats.byKind.io?.count ?? 0;
    if (hopped > 0) throw new Error(`worker-fast: ${hopped} exits hopped to the main thread (fast path not taken)`);
    return Number(t1 - t0) / (c1 - c0) / 1000;
  } finally {
    await runner.stop();
  }
}
