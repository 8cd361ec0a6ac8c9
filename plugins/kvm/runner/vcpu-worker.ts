/**
 * The vCPU worker: runs KVM_RUN for one vCPU in a tight loop on its own thread and
 * hands every exit that needs the VMM to the main thread through the mailbox in
 * ./protocol.ts. It never touches device state: devices live on the main thread.
 * SAFETY: the vcpu fd belongs to the main thread's KvmVcpu (fds are process-wide);
 * this thread maps its own view of kvm_run and unmaps it before exiting; the
 * eventfd (if any) belongs to the runner and is only written here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { c, SYS_gettid } from '../../../core/native/libc.js';
import { EXIT } from '../abi/ioctls.js';
import { KvmVcpu } from '../vcpu.js';
import { mpStateNumber } from '../abi/mp-state.js';
import { ACTION, CMD, CTRL, POST, STAT_KINDS, STATE, type WorkerInit } from './protocol.js';
import { FAST, fastPio, RING_HDR, TxRing } from './fast-path.js';
import { fastMmio } from './fast-path-mmio.js';
import { RUN } from '../run-area.js';
import { EXIT_IO_OUT } from '../abi/ioctls.js';
import { installFilter } from '../../../core/security/seccomp-install.js';

/** Started by WorkerVcpuRunner.prewarm(): the module loads first, then the vCPU comes in a message ({ init }). */
// A spare that is not needed gets { exit: true } instead (terminate() while koffi is still loading aborts the
// whole process: napi_throw on a terminating isolate is fatal), and ends here once its module has loaded.
const init: WorkerInit = (workerData as { prewarm?: boolean } | undefined)?.prewarm
  ? await new Promise<WorkerInit>((res) =>
      parentPort!.once('message', (m: { init?: WorkerInit; exit?: boolean }) =>
        m.init ? res(m.init) : process.exit(0),
      ),
    )
  : (workerData as WorkerInit);
const ctrl = new Int32Array(init.ctrl);
const tid = new Int32Array(init.tid);
const stats = new Float64Array(init.stats);
const GUEST_NS = STAT_KINDS.length * 2;
const one = new Uint8Array(new ArrayBuffer(8));
new DataView(one.buffer).setBigUint64(0, 1n, true);
const table = init.fastPath ? new Int32Array(init.fastPath.table) : undefined;
const ring = init.fastPath ? new TxRing(init.fastPath.ring) : undefined;
const mmioTable = init.fastPath?.mmio ? new Int32Array(init.fastPath.mmio) : undefined;
const otherRings = (init.fastPath?.otherRings ?? []).map((b) => new TxRing(b));
/** Stats index per FAST result (RING and RING_NOTIFY both count as a queued write). */
const FAST_KIND = [
  STAT_KINDS.indexOf('pio-fast-ring'),
  STAT_KINDS.indexOf('pio-fast-ring'),
  STAT_KINDS.indexOf('pio-fast-read'),
  STAT_KINDS.indexOf('pio-fast-drop'),
  STAT_KINDS.indexOf('mmio-fast-read'),
  STAT_KINDS.indexOf('mmio-fast-ring'),
  STAT_KINDS.indexOf('mmio-fast-ring'),
];

/** Wakes the main thread to drain the TX ring (it is not waiting for an answer). */
function wakeMain(): void {
  if (init.eventFd >= 0) c.write(init.eventFd, one, 8);
  else if (ring) Atomics.notify(ring.hdr, RING_HDR.PENDING);
}

/**
 * Tries the fast paths for a PIO exit, reading the exit straight from this thread's kvm_run
 * mapping (no decode object). Returns the stats index when the exit was completed here, else -1.
 */
function tryFast(vcpu: KvmVcpu): number {
  const run = vcpu.run_;
  const v = run.view;
  // data_offset is a u64 inside the mapping: the high half must be 0 (fastPio checks the low half's bounds).
  if (v.getUint32(RUN.ioDataOffset + 4, true) !== 0) return -1;
  const r = fastPio(
    table!,
    ring,
    v.getUint8(RUN.ioDirection) === EXIT_IO_OUT,
    v.getUint16(RUN.ioPort, true),
    v.getUint8(RUN.ioSize),
    v.getUint32(RUN.ioCount, true),
    run.bytes,
    v.getUint32(RUN.ioDataOffset, true),
    otherRings,
  );
  if (r === FAST.HOP) return -1;
  if (r === FAST.RING_NOTIFY) wakeMain();
  return FAST_KIND[r];
}

/** The MMIO counterpart of tryFast (./fast-path-mmio.ts). */
function tryFastMmio(vcpu: KvmVcpu): number {
  const run = vcpu.run_;
  const v = run.view;
  const r = fastMmio(
    mmioTable!,
    ring,
    v.getUint8(RUN.mmioIsWrite) !== 0,
    v.getUint32(RUN.mmioAddr, true),
    v.getUint32(RUN.mmioAddr + 4, true),
    v.getUint32(RUN.mmioLen, true),
    run.bytes,
    RUN.mmioData,
    otherRings,
  );
  if (r === FAST.HOP) return -1;
  if (r === FAST.MMIO_RING_NOTIFY) wakeMain();
  return FAST_KIND[r];
}

const statIndex = (reason: number): number => {
  switch (reason) {
    case EXIT.IO:
      return 0;
    case EXIT.MMIO:
      return 1;
    case EXIT.HLT:
      return 2;
    case EXIT.SHUTDOWN:
      return 3;
    case EXIT.INTR:
      return 4;
    case EXIT.SYSTEM_EVENT:
      return 5;
    case EXIT.INTERNAL_ERROR:
      return 6;
    case EXIT.FAIL_ENTRY:
      return 7;
    case EXIT.DEBUG:
      return 8;
    default:
      return 9;
  }
};

/** Posts `what` to the main thread and blocks until it answers; returns the action. */
function post(what: number): number {
  Atomics.store(ctrl, CTRL.EXIT, what);
  Atomics.store(ctrl, CTRL.STATE, STATE.REQUEST);
  Atomics.notify(ctrl, CTRL.STATE);
  if (init.eventFd >= 0) c.write(init.eventFd, one, 8); // wakes the main loop's watch
  while (Atomics.load(ctrl, CTRL.STATE) === STATE.REQUEST) {
    // A runner that is stopping may never answer: give up then (it notifies STATE on stop).
    if (Atomics.load(ctrl, CTRL.CMD) === CMD.STOP) {
      Atomics.store(ctrl, CTRL.STATE, STATE.IDLE);
      return ACTION.STOP_VCPU;
    }
    Atomics.wait(ctrl, CTRL.STATE, STATE.REQUEST);
  }
  const action = Atomics.load(ctrl, CTRL.ACTION);
  Atomics.store(ctrl, CTRL.STATE, STATE.IDLE);
  return action;
}

/** Which exits KVM completes only on the next KVM_RUN (the IN data, RIP past the instruction). */
const completesOnEntry = (reason: number): boolean => reason === EXIT.IO || reason === EXIT.MMIO;

function loop(vcpu: KvmVcpu): void {
  let pendingKind = -1;
  let tExit = 0n;
  /** The last exit was a PIO/MMIO exit KVM has not completed yet (it does so when KVM_RUN is entered again). */
  let incomplete = false;
  for (;;) {
    const cmd = Atomics.load(ctrl, CTRL.CMD);
    if (cmd === CMD.STOP) return;
    if (cmd === CMD.QUERY) {
      // Read on this thread, between two KVM_RUNs (the main thread resets CMD when it takes the answer).
      try {
        const st = vcpu.runState();
        Atomics.store(ctrl, CTRL.MP_STATE, mpStateNumber(st.mpState));
        Atomics.store(ctrl, CTRL.IF, st.interruptsEnabled ? 1 : 0);
        Atomics.store(ctrl, CTRL.RIP_LO, Number(st.pc & 0xffffffffn) | 0);
        Atomics.store(ctrl, CTRL.RIP_HI, Number((st.pc >> 32n) & 0xffffffffn) | 0);
      } catch {
        Atomics.store(ctrl, CTRL.MP_STATE, -1);
      }
      // Answer without waiting: a concurrent PAUSE/STOP keeps its command (the exchange fails then).
      Atomics.compareExchange(ctrl, CTRL.CMD, CMD.QUERY, CMD.RUN);
      Atomics.store(ctrl, CTRL.QDONE, 1);
      Atomics.notify(ctrl, CTRL.STATE); // atomics mode: wakes the main thread's waitAsync
      if (init.eventFd >= 0) c.write(init.eventFd, one, 8);
      continue;
    }
    // A paused vCPU's registers are read and saved (snapshot, migration): KVM first finishes the I/O instruction
    // the last exit stopped at (KVM API: "userspace should ensure that the operation is completed before performing
    // a live migration"): KVM_RUN with immediate_exit set completes it and returns at once. Without this the saved
    // state re-runs the instruction: a repeated UART IIR read loses a THRE interrupt, a repeated virtio-mmio
    // InterruptACK loses a used-buffer notification.
    if (cmd === CMD.PAUSE && !incomplete) {
      // Held until a resume or stop bumps WAKES (read before PAUSED is said: every resume after it counts). Then
      // look again from the top: when the next pause came before this thread woke, CMD says PAUSE again and that
      // pause waits for its own PAUSED; sleeping on while CMD says PAUSE would leave it waiting for ever.
      const wakes = Atomics.load(ctrl, CTRL.WAKES);
      post(POST.PAUSED);
      while (Atomics.load(ctrl, CTRL.WAKES) === wakes) Atomics.wait(ctrl, CTRL.WAKES, wakes);
      continue;
    }
    if (cmd === CMD.PAUSE) vcpu.run_.immediateExit = 1;
    const tEnter = process.hrtime.bigint();
    if (pendingKind >= 0) {
      stats[pendingKind * 2] += 1;
      stats[pendingKind * 2 + 1] += Number(tEnter - tExit);
    }
    let reason: number;
    try {
      reason = vcpu.runRaw();
    } catch (e) {
      Atomics.store(ctrl, CTRL.ERRNO, (e as { data?: { errno?: number } }).data?.errno ?? -1);
      post(POST.FAILED);
      return;
    }
    tExit = process.hrtime.bigint();
    stats[GUEST_NS] += Number(tExit - tEnter);
    pendingKind = statIndex(reason);
    incomplete = completesOnEntry(reason);
    if (reason === EXIT.INTR) continue; // a kick: look at CMD again
    if (reason === EXIT.IO && table) {
      const k = tryFast(vcpu);
      if (k >= 0) {
        pendingKind = k;
        continue;
      }
    }
    if (reason === EXIT.MMIO && mmioTable) {
      const k = tryFastMmio(vcpu);
      if (k >= 0) {
        pendingKind = k;
        continue;
      }
    }
    if (post(reason) === ACTION.STOP_VCPU) {
      stats[pendingKind * 2] += 1;
      stats[pendingKind * 2 + 1] += Number(process.hrtime.bigint() - tExit);
      return;
    }
  }
}

const vcpu = new KvmVcpu(init.index, init.vcpuFd, init.mmapSize, false, tid);
Atomics.store(tid, 0, Number(c.gettid(SYS_gettid)));
// This thread's own filter (no TSYNC): from here on it may only run the guest, hop and end (core/security).
const refused = init.seccompFilter ? installFilter(init.seccompFilter, 0) : undefined;
try {
  if (refused !== undefined) throw new Error(`vCPU ${init.index}: its seccomp filter failed: ${refused}`);
  // The start-up timeline's last step (core/vmm/timings.ts markFirstRun): the wall clock entering the guest.
  parentPort?.postMessage({ firstRun: performance.timeOrigin + performance.now() });
  loop(vcpu);
} finally {
  Atomics.store(tid, 0, 0);
  vcpu.close(); // unmaps this thread's view only; the fd stays with the main thread
  parentPort?.postMessage({ done: init.index });
}
