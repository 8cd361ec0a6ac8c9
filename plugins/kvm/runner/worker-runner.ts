import { Worker } from 'node:worker_threads';
import { EventEmitter } from 'eventemitter3';
import type { Bus, Disposable } from '../../../core/bus/bus.js';
import type { EventLoop } from '../../../core/events/event-loop.js';
import type { VcpuExit, VcpuRunner, VcpuRunState } from '../../../core/hypervisor/hypervisor.js';
import { mpStateName } from '../abi/mp-state.js';
import { KvmVm } from '../vm.js';
import type { Logger } from '../../../core/logger.js';
import { c, check, EFD_CLOEXEC, EFD_NONBLOCK, errnoName } from '../../../core/native/libc.js';
import { EXIT } from '../abi/ioctls.js';
import { KvmError } from '../errors.js';
import { ensureKickHandler } from '../kick.js';
import type { KvmVcpu } from '../vcpu.js';
import { ACTION, CMD, CTRL, CTRL_WORDS, POST, STATE, type WorkerInit, ripFromWords } from './protocol.js';
import { SharedExitStats } from './stats.js';
import { FastPathHost, type FastPathHostOptions } from './fast-path-host.js';
import { RING_HDR, type TxRing } from './fast-path.js';
import { markFirstRun } from '../../../core/vmm/timings.js';

/** What the machine wants done after a vCPU exit the runner cannot handle itself. */
export type ExitAction = 'continue' | 'stop';
/** Decides what happens after a non-I/O exit of vCPU `index`; returning nothing leaves the runner's default. */
export type ExitHandler = (index: number, exit: VcpuExit) => ExitAction | void;

/** The events a WorkerVcpuRunner emits (each handler's arguments beside it). */
export interface WorkerRunnerEvents {
  /** Every exit other than PIO/MMIO (hlt, shutdown, system-event, internal-error, fail-entry, debug, unknown). */
  exit: (index: number, exit: VcpuExit) => void;
  /** A vCPU's worker ended (its exit was answered 'stop', KVM_RUN failed, or stop() was called). */
  'vcpu-stopped': (index: number) => void;
  /** KVM_RUN failed, a worker died, or the bus threw. */
  error: (err: unknown, index: number) => void;
}

/** How a WorkerVcpuRunner runs its vCPU workers. */
export interface WorkerRunnerOptions {
  /**
   * How a worker wakes the main thread: 'eventfd' (a per-vCPU eventfd watched by
   * the EventLoop) or 'atomics' (Atomics.waitAsync on the mailbox). Default:
   * 'eventfd' when an EventLoop is given.
   */
  notify?: 'eventfd' | 'atomics';
  logger?: Logger;
  /** Default actions for exits when no handler decides (hlt: 'stop'). */
  onExit?: ExitHandler;
  /**
   * Worker fast paths (./fast-path.ts): PIO devices that publish them (core/bus/fast-path.ts) and
   * unclaimed ports are handled on the vCPU's thread without a hop. Default on; false turns them off.
   */
  fastPath?: boolean | FastPathHostOptions;
  /**
   * A seccomp filter (core/security vcpuThreadFilter, encoded) each worker installs on its own thread once its vCPU is
   * mapped, before its first KVM_RUN; absent: none.
   */
  seccompFilter?: Uint8Array;
  /**
   * Where this runner keeps its spare threads (startSpareThreads): a list the caller may have filled already, so
   * that threads started before the runner existed (KvmBackend starts them as the VM is assembled) are taken
   * first. Default: a list of its own.
   */
  spares?: Worker[];
}

interface Slot {
  vcpu: KvmVcpu;
  ctrl: Int32Array;
  worker?: Worker;
  eventFd: number;
  watch?: Disposable;
  exited?: Promise<void>;
  paused: boolean;
  pauseWaiters: (() => void)[];
  queryWaiters: ((s: VcpuRunState) => void)[];
  running: boolean;
  ring?: TxRing;
}

const WORKER_URL = new URL('./vcpu-worker.js', import.meta.url);

/**
 * Starts vCPU threads until `list` holds `count`: each loads its code (a Node thread, the worker's module, koffi) and
 * then waits for the WorkerInit of the vCPU it will run (WorkerVcpuRunner.start). They do not keep the process
 * alive until taken; one that fails or ends before it is taken leaves the list (start() then makes a fresh one,
 * whose failure it reports). End those not taken with endSpareThreads.
 */
export function startSpareThreads(list: Worker[], count: number): void {
  while (list.length < count) {
    const w = new Worker(WORKER_URL, { workerData: { prewarm: true } });
    w.unref();
    const drop = (): void => {
      const i = list.indexOf(w);
      if (i >= 0) list.splice(i, 1);
    };
    w.on('error', drop);
    w.once('exit', drop);
    list.push(w);
  }
}

/**
 * Ends the spare threads in `list` (and empties it): asked, not terminated: terminate() while a spare still loads
 * koffi aborts the process (napi_throw, seen in CI); each ends once its module has loaded.
 */
export function endSpareThreads(list: Worker[]): void {
  for (const w of list.splice(0)) w.postMessage({ exit: true });
}

/** Atomics.waitAsync (ES2024; Node 16+), typed here because the project's lib is ES2023. */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string };
  }
).waitAsync.bind(Atomics) as (
  a: Int32Array,
  i: number,
  v: number,
) => { async: true; value: Promise<string> } | { async: false; value: string };

/**
 * Runs each vCPU on its own worker_thread (KVM_RUN is synchronous) and services
 * their PIO/MMIO exits on the main thread, where the devices live: the worker
 * posts the exit in a SharedArrayBuffer mailbox, wakes the main thread (eventfd +
 * EventLoop.watch, or Atomics.waitAsync), the main thread dispatches to the Bus
 * directly on the shared kvm_run page, answers, and the worker re-enters the guest.
 * Other exits go to the exit handler / 'exit' event with the vCPU index.
 */
export class WorkerVcpuRunner implements VcpuRunner {
  readonly stats = new SharedExitStats();
  readonly events = new EventEmitter<WorkerRunnerEvents>();
  private slots: Slot[] = [];
  private readonly notify: 'eventfd' | 'atomics';
  private exitHandler: ExitHandler | undefined;
  private state: 'created' | 'running' | 'paused' | 'stopped' = 'created';
  private allStopped: Promise<void> = Promise.resolve();
  private fast: FastPathHost | undefined;
  /**
   * Workers started by prewarm() (or before it, opts.spares): their code loaded, each waiting for the WorkerInit
   * start() posts it.
   */
  private readonly spare: Worker[];

  /**
   * `vcpus`: the vCPUs to run, or a KvmVm — then start() runs every vCPU created on
   * it so far (so the runner can be built before the machine creates and sets up vCPUs).
   */
  constructor(
    private readonly vcpus: readonly KvmVcpu[] | KvmVm,
    private readonly bus: Bus,
    private readonly loop?: EventLoop,
    private readonly opts: WorkerRunnerOptions = {},
  ) {
    this.notify = opts.notify ?? (loop ? 'eventfd' : 'atomics');
    if (this.notify === 'eventfd' && !loop) throw new KvmError('Runner', "notify 'eventfd' needs an EventLoop");
    this.exitHandler = opts.onExit;
    this.spare = opts.spares ?? [];
  }

  /** Decides what happens after hlt/shutdown/system-event/... exits (default: stop that vCPU). */
  setExitHandler(h: ExitHandler | undefined): void {
    this.exitHandler = h;
  }

  /**
   * Starts `count` vCPU threads ahead of start(), before the vCPUs need to exist, so that loading their code (a Node
   * thread, the worker's module, koffi) overlaps what the machine does before it runs them (reading the kernel);
   * start() hands each one its vCPU. Spares keep the process alive only once used; stop() ends those left unused.
   */
  prewarm(count: number): void {
    if (this.state !== 'created' && this.state !== 'stopped') return;
    startSpareThreads(this.spare, count);
  }

  /** Resolves when every vCPU has stopped (by itself or through stop()). */
  get done(): Promise<void> {
    return this.allStopped;
  }

  async start(): Promise<void> {
    if (this.state !== 'created' && this.state !== 'stopped')
      throw new KvmError('Runner', `cannot start a runner that is ${this.state}`);
    const vcpus = this.vcpus instanceof KvmVm ? this.vcpus.vcpuList() : this.vcpus;
    if (vcpus.length === 0)
      throw new KvmError('Runner', 'no vCPUs to run: create them on the Vm before starting the runner');
    this.slots = vcpus.map((vcpu) => ({
      vcpu,
      ctrl: new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4)),
      eventFd: -1,
      paused: false,
      pauseWaiters: [],
      queryWaiters: [],
      running: false,
    }));
    ensureKickHandler();
    this.fast?.dispose();
    this.fast = undefined;
    if (this.opts.fastPath !== false) {
      const fast = new FastPathHost(this.bus, {
        logger: this.opts.logger,
        ...(typeof this.opts.fastPath === 'object' ? this.opts.fastPath : {}),
      });
      for (const s of this.slots) s.ring = fast.addRing();
      fast.sync();
      this.fast = fast;
      this.stats.fastPath = () => fast.summary();
    }
    this.state = 'running';
    const exits: Promise<void>[] = [];
    for (const s of this.slots) {
      if (this.notify === 'eventfd') {
        // SAFETY: the runner owns this eventfd; the worker only writes to it; closed when the worker ends.
        s.eventFd = Number(check('eventfd', c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)));
        const buf = new Uint8Array(8);
        s.watch = this.loop!.watch(s.eventFd, { readable: true }, () => {
          c.read(s.eventFd, buf, 8);
          this.fast?.drainAll(); // a TX ring went non-empty, or an exit waits (service drains too)
          this.takeQueryAnswer(s);
          this.service(s);
        });
      }
      const init: WorkerInit = {
        index: s.vcpu.index,
        vcpuFd: s.vcpu.fd,
        mmapSize: s.vcpu.mmapSize,
        eventFd: s.eventFd,
        ctrl: s.ctrl.buffer as SharedArrayBuffer,
        tid: s.vcpu.tidCell.buffer as SharedArrayBuffer,
        stats: this.stats.add(),
        seccompFilter: this.opts.seccompFilter,
        fastPath:
          this.fast && s.ring
            ? {
                table: this.fast.table.buffer,
                ring: s.ring.buffer,
                mmio: this.fast.mmio.table.buffer,
                otherRings: this.slots.filter((o) => o !== s && o.ring).map((o) => o.ring!.buffer),
              }
            : undefined,
      };
      const spare = this.spare.shift();
      const w = spare ?? new Worker(WORKER_URL, { workerData: init });
      if (spare) {
        spare.ref();
        spare.postMessage({ init });
      }
      s.worker = w;
      s.running = true;
      w.on('message', (m: { firstRun?: number }) => {
        if (typeof m?.firstRun === 'number') markFirstRun(s.vcpu.index, m.firstRun);
      });
      exits.push(
        new Promise<void>((resolve) => {
          w.once('error', (err) =>
            this.events.emit(
              'error',
              new KvmError(
                'Runner',
                `vCPU ${s.vcpu.index} worker failed: ${String(err)}`,
                { index: s.vcpu.index },
                { cause: err },
              ),
              s.vcpu.index,
            ),
          );
          w.once('exit', () => {
            s.running = false;
            this.fast?.drainAll(); // what it queued before it ended still reaches the devices
            Atomics.notify(s.ctrl, CTRL.STATE); // releases a pending waitAsync
            if (s.ring) Atomics.notify(s.ring.hdr, RING_HDR.PENDING);
            s.watch?.dispose();
            s.watch = undefined;
            if (s.eventFd >= 0) c.close(s.eventFd);
            s.eventFd = -1;
            for (const r of s.pauseWaiters.splice(0)) r();
            this.answerQueriesDirectly(s);
            this.events.emit('vcpu-stopped', s.vcpu.index);
            resolve();
          });
        }),
      );
      if (this.notify === 'atomics') {
        this.arm(s);
        this.armRing(s);
      }
    }
    this.allStopped = Promise.all(exits).then(() => {
      this.state = 'stopped';
    });
  }

  /** waitAsync mode: waits for the worker's next REQUEST without blocking the main thread. */
  private arm(s: Slot): void {
    if (!s.running && s.worker) return;
    this.takeQueryAnswer(s);
    const cur = Atomics.load(s.ctrl, CTRL.STATE);
    if (cur === STATE.REQUEST) {
      this.service(s);
      setImmediate(() => this.arm(s));
      return;
    }
    const r = waitAsync(s.ctrl, CTRL.STATE, cur);
    this.takeQueryAnswer(s); // one the worker left (and notified) before this wait was registered
    if (r.async) void r.value.then(() => this.arm(s));
    else setImmediate(() => this.arm(s));
  }

  /** waitAsync mode: drains the vCPU's TX ring whenever its worker says it went non-empty. */
  private armRing(s: Slot): void {
    const ring = s.ring;
    if (!ring || (!s.running && s.worker)) return;
    if (Atomics.load(ring.hdr, RING_HDR.PENDING) !== 0) {
      this.fast?.drainAll();
      setImmediate(() => this.armRing(s));
      return;
    }
    const r = waitAsync(ring.hdr, RING_HDR.PENDING, 0);
    if (r.async) void r.value.then(() => this.armRing(s));
    else setImmediate(() => this.armRing(s));
  }

  /** Resolves vcpuStates() waiters from an answer the worker left without waiting (CTRL.QDONE). */
  private takeQueryAnswer(s: Slot): void {
    if (Atomics.exchange(s.ctrl, CTRL.QDONE, 0) !== 1) return;
    const mp = mpStateName(Atomics.load(s.ctrl, CTRL.MP_STATE));
    const st: VcpuRunState = {
      index: s.vcpu.index,
      mpState: mp ?? 'stopped',
      interruptsEnabled: Atomics.load(s.ctrl, CTRL.IF) === 1,
      rip: ripFromWords(Atomics.load(s.ctrl, CTRL.RIP_LO), Atomics.load(s.ctrl, CTRL.RIP_HI)),
    };
    for (const r of s.queryWaiters.splice(0)) r(st);
  }

  /** Handles a posted exit of one vCPU and answers it. Never throws. */
  private service(s: Slot): void {
    if (Atomics.load(s.ctrl, CTRL.STATE) !== STATE.REQUEST) return;
    if (Atomics.load(s.ctrl, CTRL.CMD) === CMD.STOP) return; // the worker gives up waiting by itself
    if (this.fast) {
      // Ordering: every write any vCPU queued reaches its device before this exit is handled.
      try {
        this.fast.drainAll();
        this.fast.sync();
      } catch (err) {
        this.events.emit('error', err, s.vcpu.index);
      }
    }
    const what = Atomics.load(s.ctrl, CTRL.EXIT);
    let action: number = ACTION.CONTINUE;
    try {
      if (what === EXIT.IO || what === EXIT.MMIO) {
        this.dispatch(s.vcpu.run_.decode(), s.vcpu.index);
      } else if (what === POST.PAUSED) {
        s.paused = true;
        for (const r of s.pauseWaiters.splice(0)) r();
        this.answerQueriesDirectly(s);
      } else if (what === POST.STATE) {
        Atomics.compareExchange(s.ctrl, CTRL.CMD, CMD.QUERY, CMD.RUN);
        const mp = mpStateName(Atomics.load(s.ctrl, CTRL.MP_STATE));
        const st: VcpuRunState = {
          index: s.vcpu.index,
          mpState: mp ?? 'stopped',
          interruptsEnabled: Atomics.load(s.ctrl, CTRL.IF) === 1,
          rip: ripFromWords(Atomics.load(s.ctrl, CTRL.RIP_LO), Atomics.load(s.ctrl, CTRL.RIP_HI)),
        };
        for (const r of s.queryWaiters.splice(0)) r(st);
      } else if (what === POST.FAILED) {
        const e = Atomics.load(s.ctrl, CTRL.ERRNO);
        this.events.emit(
          'error',
          new KvmError('Runner', `KVM_RUN of vCPU ${s.vcpu.index} failed: ${errnoName(e)} (${e})`, {
            index: s.vcpu.index,
            errno: e,
          }),
          s.vcpu.index,
        );
        action = ACTION.STOP_VCPU;
      } else {
        const exit = s.vcpu.run_.decode();
        this.events.emit('exit', s.vcpu.index, exit);
        const decided = this.exitHandler?.(s.vcpu.index, exit);
        action =
          (decided ?? (exit.kind === 'debug' ? 'continue' : 'stop')) === 'stop' ? ACTION.STOP_VCPU : ACTION.CONTINUE;
      }
    } catch (err) {
      this.events.emit('error', err, s.vcpu.index);
    }
    Atomics.store(s.ctrl, CTRL.ACTION, action);
    Atomics.store(s.ctrl, CTRL.STATE, STATE.RESPONSE);
    Atomics.notify(s.ctrl, CTRL.STATE);
  }

  /** PIO/MMIO to the bus. Data views alias kvm_run: reads fill it in place. */
  private dispatch(exit: VcpuExit, index: number): void {
    if (exit.kind === 'io') {
      const { size, count, data, port, direction } = exit;
      for (let i = 0; i < count; i++) {
        const d = data.subarray(i * size, (i + 1) * size);
        this.stats.hops.addPio(port, direction === 'out');
        this.access('pio', BigInt(port), d, direction === 'out', index);
      }
    } else if (exit.kind === 'mmio') {
      this.stats.hops.addMmio(exit.address, exit.isWrite);
      this.access('mmio', exit.address, exit.data, exit.isWrite, index);
    } else {
      throw new KvmError(
        'Runner',
        `vCPU ${index}: malformed ${exit.kind} exit (suberror ${'suberror' in exit ? exit.suberror : '?'})`,
      );
    }
  }

  private access(space: 'pio' | 'mmio', addr: bigint, data: Uint8Array, isWrite: boolean, index: number): void {
    try {
      if (isWrite) this.bus.write(space, addr, data);
      else this.bus.read(space, addr, data);
    } catch (err) {
      if (!isWrite) data.fill(0xff);
      this.events.emit('error', err, index);
    }
  }

  /** Reads a vCPU's state from this thread: only while its worker is parked or gone. */
  private readDirectly(s: Slot): VcpuRunState {
    try {
      const st = s.vcpu.runState();
      return { index: s.vcpu.index, mpState: st.mpState, interruptsEnabled: st.interruptsEnabled, rip: st.pc };
    } catch {
      return { index: s.vcpu.index, mpState: 'stopped', interruptsEnabled: false };
    }
  }

  private answerQueriesDirectly(s: Slot): void {
    if (s.queryWaiters.length === 0) return;
    const st = this.readDirectly(s);
    for (const r of s.queryWaiters.splice(0)) r(st);
  }

  /** Each vCPU's mp_state and RFLAGS.IF, read on the vCPU's own thread (kicking it out of guest code briefly). */
  async vcpuStates(): Promise<VcpuRunState[]> {
    return Promise.all(
      this.slots.map((s) => {
        if (!s.running || s.paused) return Promise.resolve(this.readDirectly(s));
        const p = new Promise<VcpuRunState>((r) => s.queryWaiters.push(r));
        if (Atomics.compareExchange(s.ctrl, CTRL.CMD, CMD.RUN, CMD.QUERY) === CMD.RUN) s.vcpu.kick();
        return p;
      }),
    );
  }

  activity(): number[] {
    return this.stats.activity();
  }

  private kickAll(): void {
    for (const s of this.slots) if (s.running) s.vcpu.kick();
  }

  async pause(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'paused';
    const acks = this.slots
      .filter((s) => s.running && !s.paused)
      .map((s) => new Promise<void>((r) => s.pauseWaiters.push(r)));
    for (const s of this.slots) Atomics.store(s.ctrl, CTRL.CMD, CMD.PAUSE);
    this.kickAll();
    await Promise.all(acks);
  }

  async resume(): Promise<void> {
    if (this.state !== 'paused') return;
    this.state = 'running';
    for (const s of this.slots) {
      s.paused = false;
      Atomics.store(s.ctrl, CTRL.CMD, CMD.RUN);
      Atomics.add(s.ctrl, CTRL.WAKES, 1);
      Atomics.notify(s.ctrl, CTRL.WAKES);
    }
  }

  async stop(): Promise<void> {
    endSpareThreads(this.spare);
    if (this.state === 'created') {
      this.state = 'stopped';
      return;
    }
    for (const s of this.slots) {
      Atomics.store(s.ctrl, CTRL.CMD, CMD.STOP);
      Atomics.add(s.ctrl, CTRL.WAKES, 1);
      Atomics.notify(s.ctrl, CTRL.WAKES);
      Atomics.notify(s.ctrl, CTRL.STATE); // a worker waiting for an answer stops waiting
    }
    this.kickAll();
    await this.allStopped;
    this.fast?.drainAll();
  }

  /** The vCPUs still running (worker alive). */
  get runningCount(): number {
    return this.slots.filter((s) => s.running).length;
  }
}
