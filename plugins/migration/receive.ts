import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as net from 'node:net';
import { createSharedFileMemory } from '../../core/memory/backends/shared-file-mmap.js';
import { describeIssues } from '../../core/state/persist.js';
import { Tokens } from '../../core/tokens.js';
import { assembleVm, type AssembleOptions, type AssembledVm } from '../../core/vmm/assemble.js';
import { planVm, type ConfigInput, type PlanOptions, type VmPlan } from '../../core/vmm/plan.js';
import { markStartup } from '../../core/vmm/timings.js';
import { runVm, type RunOptions, type RunResult } from '../../core/vmm/run.js';
import { MigrationError } from './errors.js';
import { SNAPSHOT_PAGE } from './format.js';
import { expectFrame, FrameReader, FrameType, FrameWriter, jsonOf } from './frames.js';
import { restoreHooks, type RestoreHooks } from './restore.js';
import { logRunning } from './run-restored.js';
import { HelloSchema, MIGRATION_VERSION, type Hello } from './stream-format.js';
import { acceptOne, parseMigrationUrl } from './url.js';
import { canPreassemble } from './preassemble.js';
import { markIncoming, type IncomingGate } from '../../core/vmm/incoming.js';
import { checkPluginVersions } from './versions.js';
import { incomingAnonymous, incomingFile, type IncomingMemory } from './incoming-memory.js';
import { warmStates, type Warmed } from './warm.js';

/** How receiveMigration listens and where it keeps the incoming memory. */
export interface ReceiveOptions {
  /** Aborting it stops listening (or receiving); nothing is left behind. */
  signal?: AbortSignal;
  /** Called once listening, with the address (a TCP port 0 becomes the real port). */
  onListening?: (address: string) => void;
  /**
   * Folder for the incoming guest memory file (default /dev/shm where it exists, else the temp folder). A VM built
   * while the pages come (preassemble) takes them in anonymous memory instead (incoming-memory.ts): no file.
   */
  memoryDir?: string;
  /** Plugins discovered already (planVm's `discovered`): spares a discovery per stream (tests, fuzzing). */
  discovered?: PlanOptions['discovered'];
  /**
   * Build the VM (devices, memory mapping, vCPUs) with these assembly options while the pages come, before the
   * source stops, when every plugin of the config allows it (preassemble.ts); then only loading the state and
   * starting the vCPUs remain for the downtime. Otherwise (without this, or `false`) the VM is built after Commit.
   * receiveMigration and runReceived pass their own options unless this is `false`.
   */
  preassemble?: Omit<AssembleOptions, 'kernel' | 'plan'> | false;
  /**
   * Called with the VM built early (vCPUs created, no state loaded) while the pages still come, and what the
   * warm-up of its state code touched (warm.ts).
   */
  onPreassembled?: (vm: AssembledVm, warmed: Warmed) => void;
}

/** A migration stream received and checked, up to the source's Commit; the VM is not built yet. */
export interface ReceivedMigration {
  hello: Hello;
  states: unknown;
  /** The guest memory file (shared mapping; removed once mapped or on failure). */
  memoryFile: string;
  hooks: RestoreHooks;
  /** The plan the Hello was checked against: assemble with it. */
  plan: VmPlan;
  /** The VM built while the pages came (see ReceiveOptions.preassemble); the caller owns it. */
  vm?: AssembledVm;
  /** Tells the source the VM runs (or why it does not), and closes the connection. */
  finish(error?: unknown): Promise<void>;
}

/** The VM of `plan` built with `hooks` (vCPUs created, no state loaded), or disposed again on failure. */
async function buildEarly(
  input: ConfigInput,
  plan: VmPlan,
  hooks: RestoreHooks,
  opts: ReceiveOptions,
  gate: IncomingGate,
): Promise<AssembledVm> {
  const vm = await assembleVm(input, { ...(opts.preassemble || {}), plan, kernel: hooks.kernel });
  try {
    hooks.prepare(vm);
  } catch (err) {
    await vm.dispose();
    throw err;
  }
  markStartup('migration: VM built before the stop');
  // what its plugins take only once the source let go (disks, taps): the source then lets go right after Commit
  vm.logger.info({ deferred: gate.deferred }, 'migration: VM built before the stop');
  // the state load after Commit then runs warm code (zod, codecs, the vCPUs' set calls): out of the downtime
  const warmed = warmStates(vm.container.resolve(Tokens.StateRegistry.token), 'built', vm.logger);
  markStartup('migration: state code warmed');
  opts.onPreassembled?.(vm, warmed);
  return vm;
}

function memoryDirOf(opts: ReceiveOptions): string {
  if (opts.memoryDir) return opts.memoryDir;
  return fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
}

/** A promise and its resolve. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Receives one migration on `url` up to the Commit: checks the Hello (format, version, the config plans here, the
 * plugins are the same and not older), writes the pages into a fresh memory file (with `preassemble`, the VM is
 * built on that file meanwhile), checks the stream's checksum and the states' shape, says Ready, and waits for the
 * source's Commit (and, unless the VM was built early, for the source to release its VM and close). Any failure
 * closes the connection, disposes the VM built early and removes the file (the source then resumes).
 */
export async function receiveStream(url: string, opts: ReceiveOptions = {}): Promise<ReceivedMigration> {
  const where = parseMigrationUrl(url);
  const sock = await acceptOne(where, opts);
  const r = new FrameReader(sock);
  const w = new FrameWriter(sock);
  const released = deferred();
  const onAbort = (): void => void sock.destroy(new Error('cancelled'));
  opts.signal?.addEventListener('abort', onAbort);
  let incoming: IncomingMemory | undefined;
  let building: Promise<AssembledVm> | undefined;
  /** The VM built early, once it is. */
  let built: AssembledVm | undefined;
  let buildError: unknown;
  /** The VM built early, as plugins see it: what they deferred until the source let go. */
  let gate: IncomingGate | undefined;
  try {
    const f = await r.next();
    expectFrame(f, FrameType.Hello, 'Hello');
    const raw = jsonOf(f, 'Hello') as Record<string, unknown>;
    if (typeof raw?.version === 'number' && raw.version !== MIGRATION_VERSION)
      throw new MigrationError('Version', `stream version ${raw.version}; this build speaks ${MIGRATION_VERSION}`);
    const parsed = HelloSchema.safeParse(raw);
    if (!parsed.success) throw new MigrationError('Format', `not a migration stream: ${describeIssues(parsed.error)}`);
    const hello = parsed.data;
    const input = { config: hello.config, baseDir: hello.baseDir, file: '<migration>' };
    const plan = await planVm(input, { discovered: opts.discovered });
    checkPluginVersions(hello.plugins, plan);
    const total = hello.memory.bytes;
    if (hello.memory.regions.reduce((n, x) => n + x.size, 0) !== total)
      throw new MigrationError('Format', 'the memory regions do not add up to the memory size');
    let states: unknown;
    const early = opts.preassemble && canPreassemble(plan);
    // A name no other receive of this process (or another) uses (incomingFile creates it with O_EXCL): a failure
    // must never remove another receive's memory file. A VM built early takes the pages in anonymous memory.
    const memoryFile = path.join(
      memoryDirOf(opts),
      `tsvmm-incoming-${process.pid}-${randomBytes(8).toString('hex')}.mem`,
    );
    incoming = early
      ? incomingAnonymous(hello.memory.regions)
      : incomingFile(memoryFile, total, (layout) => {
          const m = createSharedFileMemory(layout);
          fs.rmSync(memoryFile, { force: true }); // mapped: the pages live on in the mapping (and are written by fd)
          return m;
        });
    const hooks = restoreHooks(
      { plugins: hello.plugins, memory: hello.memory },
      () => states,
      memoryFile,
      (l) => incoming!.map(l),
    );
    markStartup('migration: Hello checked');
    if (early) {
      gate = markIncoming(plan.config, released.promise);
      building = buildEarly(input, plan, hooks, opts, gate);
      building.then((vm) => (built = vm)).catch(() => {}); // a failure is handled below
    }
    // The source stops its guest only after Prepared: the build is then out of the downtime. A failed build
    // tells the source at once (it still sends pages, and would wait for Prepared for ever). A VM whose plugins
    // deferred taking what the source holds (its disks) says so: the source then lets go right after Commit.
    (building ?? Promise.resolve()).then(
      (vm) =>
        (vm
          ? w.sendJson(FrameType.Prepared, { built: true, afterRelease: (gate?.deferred ?? 0) > 0 })
          : w.send(FrameType.Prepared)
        ).catch(() => {}),
      (err: unknown) => {
        buildError = err;
        const why = Buffer.from((err as Error)?.message ?? String(err));
        void w
          .send(FrameType.Abort, why)
          .catch(() => {})
          .finally(() => sock.destroy());
      },
    );
    let progressFrames = 0;
    for (;;) {
      const fr = await r.next();
      if (fr.type === FrameType.Pages) {
        if (fr.payload.length < 8 + SNAPSHOT_PAGE || (fr.payload.length - 8) % SNAPSHOT_PAGE)
          throw new MigrationError('Format', 'a Pages frame that is not whole pages');
        const at = Number(fr.payload.readBigUInt64LE(0));
        const len = fr.payload.length - 8;
        if (at % SNAPSHOT_PAGE || at + len > total)
          throw new MigrationError('Format', `pages at ${at} (+${len}) leave the ${total}-byte memory`);
        incoming.write(at, fr.payload.subarray(8));
      } else if (fr.type === FrameType.Zeros) {
        if (fr.payload.length !== 16) throw new MigrationError('Format', 'a Zeros frame of the wrong size');
        const at = Number(fr.payload.readBigUInt64LE(0));
        const len = Number(fr.payload.readBigUInt64LE(8));
        if (at % SNAPSHOT_PAGE || len % SNAPSHOT_PAGE || at + len > total)
          throw new MigrationError('Format', `zero pages at ${at} (+${len}) leave the ${total}-byte memory`);
        incoming.zero(at, len);
      } else if (fr.type === FrameType.Progress) {
        // every page before it is written (synchronously): the source prices its round on what landed here
        progressFrames++;
        void w.sendJson(FrameType.Ack, { progress: progressFrames, bytes: r.bytes }).catch(() => {});
      } else if (fr.type === FrameType.State) {
        states = jsonOf(fr, 'state');
        if (!Array.isArray(states)) throw new MigrationError('Format', 'the saved states are not a list');
        // the source sends its states before the last pages: a VM built early checks them (decodes every part)
        // while those pages still come, not inside the downtime after Commit
        if (built) {
          hooks.check(built);
          markStartup('migration: state checked');
        }
      } else if (fr.type === FrameType.End) {
        r.checkEnd(fr.payload);
        break;
      } else {
        expectFrame(fr, -1, 'pages, state or the end');
      }
    }
    if (states === undefined) throw new MigrationError('Format', 'the stream ended without the saved states');
    incoming.finish();
    markStartup('migration: stream ended');
    const vm = await building;
    if (vm) hooks.check(vm); // checked already unless the states came before the VM was built; a misfit is refused
    await w.send(FrameType.Ready);
    expectFrame(await r.next(), FrameType.Commit, 'Commit');
    markStartup('migration: Commit');
    opts.signal?.removeEventListener('abort', onAbort);
    // The source is stopped for good. Built early, the VM holds nothing the source still has (its control socket
    // waits for `released`) but what its plugins deferred (disks, a tap): each is taken as soon as the source closed
    // it (gate.takeAll). Not built early: wait until the source let go of its VM and closed its side, then build it.
    const closed = r.closed().then(() => released.resolve());
    if (!vm) await closed;
    else if (gate && gate.deferred > 0) {
      await gate.takeAll();
      markStartup('migration: deferred resources taken');
    }
    return {
      hello,
      states,
      memoryFile,
      hooks,
      plan,
      vm,
      finish: async (error?: unknown) => {
        fs.rmSync(memoryFile, { force: true });
        if (error === undefined) await w.sendJson(FrameType.Started, {}).catch(() => {});
        else await w.send(FrameType.Abort, Buffer.from((error as Error)?.message ?? String(error))).catch(() => {});
        (sock as net.Socket).end();
      },
    };
  } catch (caught) {
    const err = buildError ?? caught; // a connection closed because the early build failed: that failure
    opts.signal?.removeEventListener('abort', onAbort);
    incoming?.discard();
    const reason = (err as Error)?.message ?? String(err);
    if (!sock.destroyed) {
      await w.send(FrameType.Abort, Buffer.from(reason)).catch(() => {});
      sock.destroy();
    }
    await building?.then((vm) => vm.dispose()).catch(() => {}); // the VM built early (memory, vCPUs) goes too
    if (opts.signal?.aborted) throw new MigrationError('Cancelled', 'receiving the migration was cancelled');
    if (err instanceof MigrationError) throw err;
    throw new MigrationError('Format', `receiving the migration failed: ${reason}`, {}, { cause: err });
  }
}

/**
 * Listens on `url` for one incoming migration (see receiveStream), builds the VM from the stream's config with the
 * received memory and state, starts it and tells the source: the VM returned runs (the caller waits for
 * `vm.machine.stopped` and disposes it). On failure nothing is left behind.
 */
export async function receiveMigration(
  url: string,
  opts: ReceiveOptions & Omit<AssembleOptions, 'kernel' | 'plan'> = {},
): Promise<AssembledVm> {
  const got = await receiveStream(url, { ...opts, preassemble: opts.preassemble ?? opts });
  let vm: AssembledVm | undefined = got.vm;
  try {
    vm ??= await assembleVm(
      { config: got.hello.config, baseDir: got.hello.baseDir, file: '<migration>' },
      { ...opts, plan: got.plan, kernel: got.hooks.kernel },
    );
    got.hooks.load(vm);
    await vm.machine!.start();
  } catch (err) {
    await vm?.dispose();
    await got.finish(err);
    throw err;
  }
  await got.finish();
  return vm;
}

/** `vmm receive URL`: receives a migration and runs the VM like `vmm run` (signals, exit codes) until it stops. */
export async function runReceived(
  url: string,
  opts: ReceiveOptions & Omit<RunOptions, 'kernel'> = {},
): Promise<RunResult> {
  const got = await receiveStream(url, { ...opts, preassemble: opts.preassemble ?? opts });
  let told = false;
  try {
    return await runVm(
      { config: got.hello.config, baseDir: got.hello.baseDir, file: '<migration>' },
      {
        ...opts,
        plan: got.plan,
        assembled: got.vm,
        kernel: got.hooks.kernel,
        beforeStart: async (vm) => {
          got.hooks.load(vm);
          markStartup('migration: state loaded');
          await opts.beforeStart?.(vm);
        },
        onStarted: (vm) => {
          logRunning(vm, 'received');
          if (!told) {
            told = true;
            void got.finish();
          }
          opts.onStarted?.(vm);
        },
      },
    );
  } catch (err) {
    if (!told) await got.finish(err);
    throw err;
  }
}
