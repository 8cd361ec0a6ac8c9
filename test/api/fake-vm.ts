import { VmLifecycle, type StopReason } from '../../core/lifecycle.js';
import type { Machine } from '../../core/machine.js';
import { OrderedDeviceRegistry } from '../../core/device/ordered-registry.js';
import { Tokens } from '../../core/tokens.js';
import { silentLogger } from '../../core/vmm/logger.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import type { RunOptions, RunResult } from '../../core/vmm/run.js';
import { exitCodeFor } from '../../core/vmm/exit-codes.js';

/** A Machine double: records calls, runs until stop(), may have a power button. */
export class FakeMachine implements Machine {
  readonly calls: string[] = [];
  readonly stopped: Promise<StopReason>;
  private end!: (r: StopReason) => void;
  constructor(
    private readonly lifecycle: VmLifecycle,
    readonly powerButton?: () => boolean,
  ) {
    this.stopped = new Promise((r) => (this.end = r));
  }
  async start(): Promise<void> {
    this.calls.push('start');
    this.lifecycle.state = 'started';
    this.lifecycle.emit('started');
  }
  async pause(): Promise<void> {
    this.calls.push('pause');
    this.lifecycle.state = 'paused';
    this.lifecycle.emit('paused');
  }
  async resume(): Promise<void> {
    this.calls.push('resume');
    this.lifecycle.state = 'started';
    this.lifecycle.emit('resumed');
  }
  async stop(reason: StopReason): Promise<void> {
    this.calls.push(`stop:${reason.kind}`);
    this.lifecycle.state = 'stopped';
    this.lifecycle.emit('stopped', reason);
    this.end(reason);
  }
}

/** What a fake run recorded: the configs it was asked to run and each VM it started. */
export interface FakeRuns {
  configs: unknown[];
  /** Targets set on the fake balloon a VM gets when its config lists virtio-balloon (bytes, in order). */
  balloonTargets: bigint[];
  vms: AssembledVm[];
  machines: FakeMachine[];
}

/**
 * A runVm double for ApiVmm: "assembles" a VM with a lifecycle, a device registry holding one Countable device
 * ('uart0', txBytes counts the runs) and a FakeMachine; restarts on reset when the config says onReset: restart.
 * `failWith` makes the start fail as an unbootable config would.
 */
export function fakeRun(opts: { powerButton?: boolean; failWith?: Error } = {}) {
  const runs: FakeRuns = { configs: [], balloonTargets: [], vms: [], machines: [] };
  const run = async (input: { config: unknown; baseDir: string }, o: RunOptions): Promise<RunResult> => {
    runs.configs.push(input.config);
    if (opts.failWith) throw opts.failWith;
    const config = input.config as { machine: { onReset?: string }; plugins?: { name: string }[] };
    const balloon = config.plugins?.some((p) => p.name === 'virtio-balloon')
      ? { id: 'balloon0', setTarget: (b: bigint) => void runs.balloonTargets.push(b) }
      : undefined;
    for (let restarts = 0; ; restarts++) {
      const lifecycle = new VmLifecycle();
      const devices = new OrderedDeviceRegistry();
      devices.add({ id: 'uart0', counters: () => ({ txBytes: runs.vms.length * 10 }) } as never);
      devices.add({ id: 'rtc0' });
      const machine = new FakeMachine(lifecycle, opts.powerButton ? () => true : undefined);
      const vm = {
        container: {
          resolve: (t: unknown) =>
            t === Tokens.DeviceRegistry.token ? devices : t === Tokens.Balloon.token ? balloon : undefined,
          isRegistered: (t: unknown) =>
            t === Tokens.DeviceRegistry.token || (t === Tokens.Balloon.token && balloon !== undefined),
        },
        plan: { config, baseDir: input.baseDir, plugins: [] },
        lifecycle,
        logger: silentLogger(),
        machine,
        dispose: async () => {},
      } as unknown as AssembledVm;
      runs.vms.push(vm);
      runs.machines.push(machine);
      await machine.start();
      o.onStarted?.(vm);
      const reason = await machine.stopped;
      if (reason.kind === 'reset' && config.machine.onReset === 'restart') continue;
      return { reason, exitCode: exitCodeFor(reason), restarts };
    }
  };
  return { run, runs };
}
