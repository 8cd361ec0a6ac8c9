import { saveVmState } from '../../core/state/vm-state.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { copyEstimateMs } from './converge.js';
import { DirtyTracker } from './dirty.js';
import { MigrationError } from './errors.js';
import { SNAPSHOT_PAGE } from './format.js';
import { expectFrame, FrameReader, FrameType, FrameWriter, jsonOf } from './frames.js';
import { pageViews, sendPages } from './pages.js';
import { Replies } from './replies.js';
import { quiesce } from './pause.js';
import { MIGRATION_FORMAT, MIGRATION_VERSION, type Hello } from './stream-format.js';
import { connectTo, parseMigrationUrl } from './url.js';
import { VcpuThrottle } from './throttle.js';
import { savablePartsOf, type VmParts } from './vm-parts.js';
import { warmStates, warmVcpuSaves } from './warm.js';

/** How sendMigration moves a VM: downtime budget, rounds, progress and cancellation. */
export interface SendOptions {
  /** Longest the guest may stand still for the last copy (ms; default 300). */
  downtimeMs?: number;
  /** Pre-copy rounds at most before the stop-and-copy comes anyway (default 30). */
  maxRounds?: number;
  /**
   * Auto-converge (default on): once two rounds in a row left more than half the pages they went through dirty and
   * the last copy still would not fit the budget, the vCPUs are held for a share of the time (20 %, then 10 % more
   * each such round, at most 90 %; throttle.ts) so the guest dirties less. `false`: never.
   */
  autoConverge?: boolean;
  /** Called after each round with what was sent and what is still dirty. */
  onProgress?: (p: MigrationProgress) => void;
  /** Aborting it cancels the migration (before the destination takes over); the source keeps running. */
  signal?: AbortSignal;
  /**
   * Called when the source hands over (after this the source VM ends whatever happens): once the destination
   * checked everything (its `downtimeMs` then ends there), or, where the destination built its VM before the stop
   * and needs nothing this side holds, once it said its VM runs. A `vmm run` source answers its control socket
   * here: its process exits once the VM is released.
   */
  onCommit?: (r: Omit<SendResult, 'totalMs'>) => void;
}

/** One round's progress. */
export interface MigrationProgress {
  round: number;
  sentBytes: number;
  dirtyBytes: number;
  /** Bytes of page data a second the last round moved. */
  bytesPerSecond: number;
  /** What copying the dirty pages with the guest stopped would take, at the last round's price per page (ms). */
  estimateMs?: number;
  /** The share of the time the vCPUs are held by auto-converge (%), once it started. */
  throttlePercent?: number;
}

/** What a finished migration took: rounds, bytes, the guest's downtime and the whole time. */
export interface SendResult {
  rounds: number;
  sentBytes: number;
  /** From the source's pause until the destination said its VM runs. */
  downtimeMs: number;
  totalMs: number;
}

const count = (bitmap: Uint8Array): number => bitmap.reduce((n, b) => n + b, 0);

/** Waits until no device has I/O in flight, then runs `fn` in the same turn (nothing can start I/O in between). */
async function whenQuiet<T>(p: VmParts, fn: () => T): Promise<T> {
  const models = p.devices.all().flatMap((d) => [d, (d as { device?: unknown }).device]);
  const idling = models.filter(
    (d): d is { quiet: boolean; idle(): Promise<void> } =>
      typeof d === 'object' && d !== null && typeof (d as { idle?: unknown }).idle === 'function',
  );
  for (let i = 0; i < 1000; i++) {
    await Promise.all(idling.map((d) => d.idle()));
    if (idling.every((d) => d.quiet !== false)) return fn();
  }
  return fn(); // a device that never quiets: its pages are re-sent at the stop anyway (it is idle then)
}

/**
 * Live-migrates a running VM to `url` (`tcp:HOST:PORT` or `unix:PATH`), where receiveMigration listens: the
 * config and memory layout first, then pre-copy rounds (round 1 every non-zero page, later rounds the pages KVM's
 * dirty log and the VMM-side bitmap say changed) until what is left fits the downtime budget at the last round's
 * price per page (converge.ts; never after round 1 alone; auto-converge holds the vCPUs a share of the time when
 * rounds do not converge, throttle.ts), then the stop-and-copy: pause, devices quiet, every part's state, the last
 * pages, and a checksum over the stream. The destination checks it all and says Ready; only then does the source
 * say Commit, stop, release its files (disks, tap) and close its side; the destination builds the VM once it saw
 * that (unless it built it early), and says Started.
 * Any failure or cancel before Commit leaves the source running as before; after it, the source VM is gone and a
 * destination failure is reported.
 */
export async function sendMigration(vm: AssembledVm, url: string, opts: SendOptions = {}): Promise<SendResult> {
  return sendParts(savablePartsOf(vm, 'migrate'), url, opts, () => vm.dispose());
}

/** sendMigration over a VM's parts; `release` frees the source VM's files once it stopped (before Commit). */
export async function sendParts(
  p: VmParts,
  url: string,
  opts: SendOptions,
  release: () => Promise<void>,
): Promise<SendResult> {
  const target = parseMigrationUrl(url);
  if (p.lifecycle.state !== 'started')
    throw new MigrationError('State', `only a running VM can migrate; it is ${p.lifecycle.state}`);
  const t0 = performance.now();
  const budget = opts.downtimeMs ?? 300;
  const maxRounds = opts.maxRounds ?? 30;
  const sock = await connectTo(target);
  const w = new FrameWriter(sock);
  const r = new Replies(new FrameReader(sock));
  const tracker = new DirtyTracker(p.memory, p.vm);
  const view = pageViews(p);
  const throttle = opts.autoConverge === false ? undefined : new VcpuThrottle(p.machine);
  let paused = false;
  let committed = false;
  let released = false;
  const onAbort = (): void => void sock.destroy(new Error('cancelled'));
  opts.signal?.addEventListener('abort', onAbort);
  try {
    const hello: Hello = {
      format: MIGRATION_FORMAT,
      version: MIGRATION_VERSION,
      config: p.origin.config,
      baseDir: p.origin.baseDir,
      plugins: p.origin.plugins,
      memory: { bytes: tracker.pages * SNAPSHOT_PAGE, regions: [] },
    };
    let off = 0;
    for (const reg of p.memory.regions) {
      hello.memory.regions.push({ start: Number(reg.range.start.value), size: reg.bytes.length, fileOffset: off });
      off += reg.bytes.length;
    }
    await w.sendJson(FrameType.Hello, hello);
    p.logger.info({ url, memoryBytes: hello.memory.bytes }, 'migration: sending');
    // The destination builds its VM meanwhile; the guest stops only once it said Prepared ({ built: true } when
    // the VM is built: then it starts it at Commit without waiting for this side to let go, unless `afterRelease`
    // says it opens what this side holds, its disks, once this side let go of them).
    let isPrepared = false;
    let destinationBuilt = false;
    let destinationWaits = true;
    const prepared = r.next().then((f) => {
      expectFrame(f, FrameType.Prepared, 'Prepared');
      isPrepared = true;
      const said = f.payload.length > 0 ? (jsonOf(f, 'Prepared') as { built?: unknown; afterRelease?: unknown }) : {};
      destinationBuilt = said?.built === true;
      destinationWaits = !destinationBuilt || said?.afterRelease === true;
    });
    prepared.catch(() => {}); // awaited below
    // the first save of each part would otherwise compile its code inside the downtime
    const warmed = warmStates(p.states, 'running', p.logger);
    p.logger.info({ parts: warmed.saved.length, failed: warmed.failed }, 'migration: state code warmed');
    tracker.start();
    tracker.harvest(); // from here on every change is seen
    let dirty: Uint8Array = new Uint8Array(tracker.pages).fill(1);
    let sentBytes = 0;
    let round = 0;
    let behind = 0; // rounds in a row that left more than half their pages dirty
    for (;;) {
      round++;
      const t = performance.now();
      const pages = count(dirty);
      const sent = await sendPages(w, view, dirty, { skipZero: round === 1, copy: false, signal: opts.signal });
      sentBytes += sent;
      // the round ends when its pages landed: the destination acks this Progress once it wrote what came before
      // (a round priced at what the socket took would leave the destination's backlog inside the downtime)
      await w.sendJson(FrameType.Progress, { round, sentBytes });
      await r.landed(round, w.bytes);
      const ms = performance.now() - t;
      dirty = await whenQuiet(p, () => tracker.harvest());
      const dirtyPages = count(dirty);
      const estimateMs = copyEstimateMs({ round, pages, ms }, dirtyPages);
      const fits = estimateMs <= budget;
      behind = round > 1 && dirtyPages * 2 > pages ? behind + 1 : 0;
      if (throttle && !fits && behind >= 2) throttle.step();
      const progress: MigrationProgress = {
        round,
        sentBytes,
        dirtyBytes: dirtyPages * SNAPSHOT_PAGE,
        bytesPerSecond: Math.round(sent / Math.max(ms / 1000, 1e-3)),
        ...(Number.isFinite(estimateMs) ? { estimateMs: Math.round(estimateMs * 10) / 10 } : {}),
        ...(throttle?.percent ? { throttlePercent: throttle.percent } : {}),
      };
      opts.onProgress?.(progress);
      const { estimateMs: est, throttlePercent } = progress;
      p.logger.info(
        { round, pages, ms: Math.round(ms), dirtyPages, estimateMs: est, throttlePercent },
        'migration: round',
      );
      if (round === 1) {
        // the vCPUs' first save is cold: one save now, in a short pause of the pre-copy, not in the downtime
        const wv = await warmVcpuSaves(p.machine, p.states, p.logger);
        p.logger.info({ vcpus: wv.saved.length, failed: wv.failed }, 'migration: vCPU saves warmed');
      }
      if (fits && tracker.hasDirtyLog && !isPrepared && round < maxRounds) {
        await prepared; // then one more round: the guest wrote on while the destination was built
        continue;
      }
      if (!tracker.hasDirtyLog || fits || round >= maxRounds) break;
    }
    await prepared;
    await throttle?.stop();
    if (opts.signal?.aborted) throw new MigrationError('Cancelled', 'the migration was cancelled');

    // Stop and copy.
    const tStop = performance.now();
    const phases: Record<string, number> = {};
    const phase = (name: string): void => void (phases[name] = Math.round((performance.now() - tStop) * 10) / 10);
    await quiesce(p, { persist: false }); // the disks are flushed when this VM lets them go
    paused = true;
    phase('pausedMs');
    p.logger.info({ round }, 'migration: the guest stopped for the last copy');
    const states = saveVmState(p.states);
    phase('statesSavedMs');
    tracker.markQueueRings(states);
    const last = tracker.harvest();
    for (let i = 0; i < last.length; i++) if (dirty[i]) last[i] = 1;
    // dirty logging stays on until this VM is let go (or resumes on a failure): switching it off re-registers every
    // RAM slot, which a nested KVM pays dearly for, and nothing in the paused VM writes any more
    // the states first: a destination that built its VM checks them while the last pages come
    await w.sendJson(FrameType.State, states);
    phase('stateSentMs');
    sentBytes += await sendPages(w, view, last, { skipZero: false, copy: true, signal: opts.signal });
    phase('lastPagesSentMs');
    await w.end();
    phase('endSentMs');
    expectFrame(await r.next(), FrameType.Ready, 'Ready');
    phase('readyMs');

    // The destination has everything and checked it: the source lets go of its VM (disks), then says Commit.
    committed = true;
    opts.signal?.removeEventListener('abort', onAbort);
    const handOver = (downtimeMs: number): void => opts.onCommit?.({ rounds: round, sentBytes, downtimeMs });
    const letGo = async (): Promise<void> => {
      released = true;
      await p.machine.stop({ kind: 'api' });
      phase('stoppedMs');
      await release();
      tracker.stop(); // the VM is gone: only the memory's own writers come back
      phase('releasedMs');
    };
    // a source that lets go before Started answers its caller first (a `vmm run` source's control socket goes with
    // its VM): the downtime it reports then ends at the Commit
    if (destinationWaits) handOver(Math.round(performance.now() - tStop));
    await w.send(FrameType.Commit);
    let startedAt = 0;
    const started = r.next().then((f) => ((startedAt = performance.now()), f));
    started.catch(() => {}); // awaited below
    // ms since the guest stopped at each step: where the downtime goes, on this side (logged now: a `vmm run`
    // source may exit once its VM is released, before the destination's Started)
    p.logger.info({ phases, destinationBuilt }, 'migration: committed');
    if (destinationWaits) {
      // the destination builds its VM, or opens its disks, once the source closed (its files are free then): the
      // downtime ends when the destination runs, so Started is read while this VM stops and lets go
      await letGo();
      sock.end();
    }
    // built already, the destination starts at once: this side's teardown waits, so the two do not share the CPUs
    const startedFrame = await started;
    expectFrame(startedFrame, FrameType.Started, 'Started');
    void jsonOf(startedFrame, 'Started');
    phases.destinationStartedMs = Math.round((startedAt - tStop) * 10) / 10;
    const downtimeMs = Math.round(startedAt - tStop);
    if (!destinationWaits) {
      handOver(downtimeMs);
      await letGo();
    }
    sock.end();
    p.logger.info({ phases }, 'migration: the destination started');
    return { rounds: round, sentBytes, downtimeMs, totalMs: Math.round(performance.now() - t0) };
  } catch (err) {
    opts.signal?.removeEventListener('abort', onAbort);
    await throttle?.stop(); // the vCPUs run again (unless the stop-and-copy paused them: resumed below)
    tracker.stop();
    const reason = (err as Error)?.message ?? String(err);
    if (!sock.destroyed) {
      await w.send(FrameType.Abort, Buffer.from(reason)).catch(() => {});
      sock.destroy();
    }
    if (committed) {
      // handed over: the guest belongs to the destination now (it may run there), never resumed here
      if (!released) {
        await p.machine.stop({ kind: 'api' }).catch(() => {});
        await release().catch(() => {});
      }
      throw new MigrationError('Io', `the destination failed after the source stopped: ${reason}`, {}, { cause: err });
    }
    if (paused) await p.machine.resume();
    if (opts.signal?.aborted) throw new MigrationError('Cancelled', 'the migration was cancelled; the VM runs on');
    if (err instanceof MigrationError) throw err;
    throw new MigrationError('Io', `migration to ${url} failed: ${reason}; the VM runs on`, {}, { cause: err });
  }
}
