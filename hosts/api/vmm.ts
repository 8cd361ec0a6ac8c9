import type { AssembledVm, AssembleOptions } from '../../core/vmm/assemble.js';
import { runVm, type RunOptions, type RunResult } from '../../core/vmm/run.js';
import { planVm, type VmPlan } from '../../core/vmm/plan.js';
import { hostProblems } from '../../core/host/host-check.js';
import { ConfigError } from '../../core/config/errors.js';
import { ConfigErrors } from '../../core/config/problems.js';
import { collectCounters, type DeviceCounters } from '../../core/device/counters.js';
import { Tokens } from '../../core/tokens.js';
import { ApiError } from './errors.js';
import { describeVmConfig, mapVmConfig, type ApiHost, type Mapping } from './mapping.js';
import type { ChVmConfig } from './schemas.js';
import type { EventSink } from './events.js';
import { deviceTree, type DeviceNode } from './device-tree.js';

/** Cloud Hypervisor's VmState (the spec's enum, less BreakPoint). */
export type ChVmState = 'Created' | 'Running' | 'Shutdown' | 'Paused';

/** vmm.ping's answer (VmmPingResponse). */
export interface VmmPing {
  version: string;
  build_version?: string;
  pid: number;
  features: string[];
}

/** vm.info's answer (VmInfo). */
export interface VmInfo {
  config: ChVmConfig;
  state: ChVmState;
  memory_actual_size?: number;
  /** The running VM's devices (Cloud Hypervisor's device tree); absent while no VM runs. */
  device_tree?: Record<string, DeviceNode>;
}

/** How an ApiVmm runs VMs: where relative paths start, the version it reports, and seams for tests. */
export interface ApiVmmOptions {
  /** Folder relative paths in vm.create's body start from (the server's working directory). */
  baseDir: string;
  /** The version vmm.ping reports. */
  version: string;
  /** The host vm.create builds VMs on (hosts/api/mapping.ts HOST_PLUGINS); default `cloud`. */
  host?: ApiHost;
  /** Capabilities of other helpers' contracts (hosts/api/extensions.ts); tests set their own or none. */
  ext?: ApiExtensions;
  /** Receives the VM's events (event monitor); optional. */
  events?: EventSink;
  /** Assembly options for VMs it boots (tests: replacePlugins, override). */
  assemble?: AssembleOptions;
  /** Boot even where a plugin's host check says this host cannot run it (as `vmm run --force`). */
  force?: boolean;
  /** Runs a VM (default core's runVm, after planning it and the plugins' host checks); tests pass a double. */
  run?: (input: { config: unknown; baseDir: string }, opts: RunOptions) => Promise<RunResult>;
}

/** Where an optional capability of another helper's contract lives (C2 hotplug, C3 migration), once it landed. */
export interface ApiExtensions {
  /** C2: builds one more plugin instance in the running VM; resolves with its id. */
  addDevice?(vm: AssembledVm, entry: { name: string; id?: string; config?: unknown }): Promise<{ id: string }>;
  /** C2: removes a device added at runtime (or listed in the config). */
  removeDevice?(vm: AssembledVm, id: string): Promise<void>;
  /** C3: pauses the VM with its devices' I/O completed (pauseVm), and resumes it. */
  pause?(vm: AssembledVm): Promise<void>;
  resume?(vm: AssembledVm): Promise<void>;
  /** C3: writes a snapshot of the (paused) VM into a folder; the VM stays paused. */
  snapshot?(vm: AssembledVm, dir: string): Promise<void>;
  /** C3: sends the VM to a `tcp:host:port` or `unix:path` receiver, reporting each round. */
  sendMigration?(vm: AssembledVm, url: string, onProgress: (p: object) => void): Promise<void>;
  /** C3: runs a snapshot (runRestored) like runVm runs a config. */
  runRestored?(dir: string, opts: RunOptions): Promise<RunResult>;
  /** C3: receives a migration at a URL and runs the VM (runReceived). */
  runReceived?(url: string, opts: RunOptions): Promise<RunResult>;
}

/**
 * The VMM behind the API: at most one VM, in Cloud Hypervisor's life cycle (vm.create stores a config, vm.boot
 * assembles and starts it with core's runVm, vm.shutdown stops it and keeps the config, vm.delete forgets it), or a
 * VM `vmm run` started and handed over with attach(). Every method throws ApiError with the status CH would answer.
 */
export class ApiVmm {
  private chConfig?: ChVmConfig;
  private mapping?: Mapping;
  private vm?: AssembledVm;
  private running?: Promise<RunResult>;
  private lastRun?: RunResult;
  /** The VM came from `vmm run` (attach): it cannot be created, booted or deleted through the API. */
  private attached = false;
  private started?: { promise: Promise<AssembledVm>; resolve: (vm: AssembledVm) => void };
  private busy: Promise<unknown> = Promise.resolve();
  /** Set by vm.pause, cleared by vm.resume and every (re)start: machines need not track it in the lifecycle. */
  private paused = false;
  /** The current run started a VM (so its end means Shutdown, not a failed boot). */
  private ran = false;
  /** The VM came from a snapshot or a migration: vm.info describes its config from the plan. */
  private restored = false;
  /** Capabilities of contracts other helpers land (hotplug, migration): absent ones answer "not supported". */
  readonly ext: ApiExtensions;

  constructor(private readonly opts: ApiVmmOptions) {
    this.ext = { ...opts.ext };
  }

  /** The running VM (undefined between boots). */
  get current(): AssembledVm | undefined {
    return this.vm;
  }

  /** vmm.ping. */
  ping(): VmmPing {
    return { version: this.opts.version, build_version: this.opts.version, pid: process.pid, features: ['kvm'] };
  }

  /** CH's state of the VM; throws NotCreated without one. */
  state(): ChVmState {
    if (this.vm) return this.paused ? 'Paused' : 'Running';
    if (!this.chConfig && !this.attached && !this.restored) throw notCreated();
    return this.lastRun ? 'Shutdown' : 'Created';
  }

  /** vm.info. */
  info(): VmInfo {
    const state = this.state();
    const config =
      this.chConfig ?? (this.vm ? describeVmConfig(this.vm.plan.config, this.vm.plan.baseDir) : { payload: {} });
    const size = config.memory?.size;
    return {
      config,
      state,
      ...(size !== undefined ? { memory_actual_size: size } : {}),
      ...(this.vm ? { device_tree: this.deviceTreeOf(this.vm) } : {}),
    };
  }

  /** The VM's device tree; one that cannot be read (a test double without a container) is left out, logged. */
  private deviceTreeOf(vm: AssembledVm): Record<string, DeviceNode> {
    try {
      return deviceTree(vm);
    } catch (err) {
      vm.logger?.warn({ err }, 'vm.info: cannot build the device tree');
      return {};
    }
  }

  /** vm.counters: every Countable device's counters, by device id. */
  counters(): DeviceCounters {
    const vm = this.requireRunning('read the counters of');
    return collectCounters(vm.container.resolve(Tokens.DeviceRegistry.token), (id, err) =>
      vm.logger.warn({ err, device: id }, 'counters() failed'),
    );
  }

  /** vm.create: maps and keeps the config (nothing starts). */
  create(config: ChVmConfig): void {
    if (this.chConfig || this.attached) throw new ApiError('AlreadyExists', 'a VM is already created');
    this.mapping = mapVmConfig(config, this.opts.baseDir, this.opts.host ?? 'cloud');
    this.chConfig = config;
    this.lastRun = undefined;
  }

  /** vm.boot: assembles and starts the created VM; resolves once its machine runs. */
  boot(): Promise<void> {
    return this.serial(async () => {
      if (!this.mapping) throw this.attached ? new ApiError('InvalidState', 'the VM is already booted') : notCreated();
      if (this.vm || this.running) throw new ApiError('InvalidState', 'the VM is already booted');
      const input = { config: this.mapping.config, baseDir: this.opts.baseDir };
      let plan: VmPlan | undefined;
      if (!this.opts.run) {
        try {
          plan = await planVm(input, { ...this.opts.assemble, checks: true });
        } catch (err) {
          // a missing kernel or disk, a bad size: what `vmm run` refuses before it starts, here a 400
          if (err instanceof ConfigError) {
            const all = err instanceof ConfigErrors ? err.problems.map((p) => p.message) : [err.message];
            throw new ApiError('BadRequest', all.join('; '), 'Invalid VM config');
          }
          throw err;
        }
        const problems = this.opts.force ? [] : hostProblems(plan);
        if (problems.length) throw new ApiError('Failed', problems.join('; '));
      }
      const run = this.opts.run ?? runVm;
      await this.startRun((o) => run(input, { ...this.opts.assemble, plan, ...o }));
    });
  }

  /** vm.restore: runs the snapshot in `dir` (C3's runRestored); paused afterwards unless `resume`. */
  restore(dir: string, resume: boolean): Promise<void> {
    const run = this.ext.runRestored;
    return this.runIncoming(run && ((o) => run(dir, o)), 'restoring snapshots', resume);
  }

  /** vm.receive-migration: listens at `url`, resolves once the migrated VM runs here (C3's runReceived). */
  receiveMigration(url: string): Promise<void> {
    const run = this.ext.runReceived;
    return this.runIncoming(run && ((o) => run(url, o)), 'receiving a migration', true);
  }

  /** Runs a VM that comes from elsewhere (a snapshot, a migration): only where none is created yet. */
  private runIncoming(run: ((o: RunOptions) => Promise<RunResult>) | undefined, what: string, resume: boolean) {
    return this.serial(async () => {
      if (this.chConfig || this.attached || this.vm) throw new ApiError('AlreadyExists', 'a VM is already created');
      if (!run) throw new ApiError('Unsupported', `${what} is not available (migration plugin)`);
      await this.startRun(run);
      this.restored = true;
      if (!resume) await this.pauseNow(this.vm!);
    });
  }

  /** vm.send-migration: moves the VM to `url`; once the destination runs it, this side is stopped. */
  sendMigration(url: string): Promise<void> {
    return this.serial(async () => {
      const vm = this.requireRunning('migrate');
      const send = this.ext.sendMigration;
      if (!send) throw new ApiError('Unsupported', 'live migration is not available (migration plugin)');
      await send(vm, url, (p) => this.emit('migration', 'progress', { ...p }));
      this.emit('migration', 'completed', { url });
      await this.running?.catch(() => {});
    });
  }

  /**
   * Starts a run (runVm, or the migration plugin's runRestored / runReceived) and resolves once its VM runs; a run
   * that ends first is an error naming why.
   */
  private async startRun(run: (o: RunOptions) => Promise<RunResult>): Promise<void> {
    this.lastRun = undefined;
    const next = this.expectStart();
    const running = run({ signals: [], onStarted: (vm) => this.onStarted(vm) });
    this.running = running;
    void running.then(
      (r) => this.onEnded(r),
      (err: unknown) => this.onEnded({ reason: { kind: 'error', error: err }, exitCode: 1, restarts: 0 }),
    );
    await Promise.race([
      next,
      running.then((r) => {
        throw new ApiError('Failed', `the VM stopped before it ran (${describeEnd(r)})`);
      }),
    ]);
  }

  /** vm.reboot: the VM is torn down and assembled again (runVm's restart), resolves once it runs again. */
  reboot(): Promise<void> {
    return this.serial(async () => {
      const vm = this.requireRunning('reboot');
      if (vm.plan.config.machine.onReset !== 'restart')
        throw new ApiError('Unsupported', 'reboot: this VM exits on reset (machine.onReset: exit)');
      const next = this.expectStart();
      await vm.machine!.stop({ kind: 'reset' });
      await Promise.race([
        next,
        this.running!.then((r) => {
          throw new ApiError('Failed', `the VM did not come back after the reboot (${describeEnd(r)})`);
        }),
      ]);
    });
  }

  /** Hands a VM that `vmm run` started to the API (its config came from YAML). */
  attach(vm: AssembledVm): void {
    this.attached = true;
    this.onStarted(vm);
  }

  /** vm.pause. */
  pause(): Promise<void> {
    return this.serial(async () => {
      const vm = this.requireRunning('pause');
      if (this.paused) throw new ApiError('InvalidState', 'the VM is already paused');
      await this.pauseNow(vm);
    });
  }

  /** vm.resume. */
  resume(): Promise<void> {
    return this.serial(async () => {
      const vm = this.requireRunning('resume');
      if (!this.paused) throw new ApiError('InvalidState', 'the VM is not paused');
      await (this.ext.resume ? this.ext.resume(vm) : vm.machine!.resume());
      this.paused = false;
    });
  }

  /** Pauses the VM: the migration plugin's pauseVm (devices' I/O completed too) where it is there. */
  private async pauseNow(vm: AssembledVm): Promise<void> {
    await (this.ext.pause ? this.ext.pause(vm) : vm.machine!.pause());
    this.paused = true;
  }

  /** vm.shutdown: stops the VM and waits until everything is released; the config stays. */
  shutdown(): Promise<void> {
    return this.serial(async () => {
      const vm = this.requireRunning('shut down');
      await vm.machine!.stop({ kind: 'api' });
      await this.running?.catch(() => {});
    });
  }

  /** vm.power-button: presses the ACPI power button (C2: Machine.powerButton). */
  powerButton(): void {
    const vm = this.requireRunning('press the power button of');
    const m = vm.machine as { powerButton?: () => boolean };
    if (typeof m.powerButton !== 'function' || !m.powerButton())
      throw new ApiError('Unsupported', 'this machine has no power button (ACPI power button: hosts/cloud.yaml)');
  }

  /** vm.delete: stops a running VM and forgets the config. */
  delete(): Promise<void> {
    return this.serial(async () => {
      if (this.vm) {
        await this.vm.machine!.stop({ kind: 'api' });
        await this.running?.catch(() => {});
      }
      this.chConfig = undefined;
      this.mapping = undefined;
      this.lastRun = undefined;
      this.restored = false;
    });
  }

  /** vmm.shutdown's first half: stops the VM if one runs (the server then closes and the process ends). */
  async stopAll(): Promise<void> {
    if (!this.vm) return;
    await this.vm.machine!.stop({ kind: 'api' });
    await this.running?.catch(() => {});
  }

  /** The running VM, or the error CH answers when there is none: 404 not created, 405 not booted. */
  requireRunning(what: string): AssembledVm {
    if (this.vm?.machine) return this.vm;
    if (!this.chConfig && !this.attached && !this.restored) throw notCreated();
    throw new ApiError('InvalidState', `cannot ${what} the VM: it is not booted`);
  }

  /** True while the VM is paused through the API. */
  get isPaused(): boolean {
    return this.vm !== undefined && this.paused;
  }

  private onStarted(vm: AssembledVm): void {
    this.vm = vm;
    this.ran = true;
    this.paused = false;
    this.opts.events?.watch(vm);
    vm.lifecycle.once('stopped', () => {
      if (this.vm === vm) this.vm = undefined;
    });
    this.started?.resolve(vm);
    this.started = undefined;
  }

  /** Passes an event to the event monitor, if there is one (device added/removed, migration progress). */
  emit(source: 'vm' | 'device' | 'migration', event: string, properties?: Record<string, unknown>): void {
    this.opts.events?.emit(source, event, properties);
  }

  private onEnded(r: RunResult): void {
    // a run that never started leaves the VM Created (a failed vm.boot), one that ran leaves it Shutdown
    if (this.ran) this.lastRun = r;
    this.ran = false;
    this.running = undefined;
    this.vm = undefined;
  }

  /** A promise of the next started VM (boot, reboot). */
  private expectStart(): Promise<AssembledVm> {
    let resolve!: (vm: AssembledVm) => void;
    const promise = new Promise<AssembledVm>((r) => (resolve = r));
    this.started = { promise, resolve };
    return promise;
  }

  /** Runs state changes one at a time (two vm.boot requests racing would start two VMs). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.busy.then(fn, fn);
    this.busy = p.catch(() => {});
    return p;
  }
}

const notCreated = (): ApiError => new ApiError('NotCreated', 'the VM is not created');

/** A run's end in words, for errors. */
function describeEnd(r: RunResult): string {
  const reason = r.reason;
  if (reason.kind === 'error') return `error: ${(reason.error as Error)?.message ?? String(reason.error)}`;
  return reason.kind;
}
