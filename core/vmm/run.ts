import { Tokens } from '../tokens.js';
import type { StopReason } from '../lifecycle.js';
import type { Machine } from '../machine.js';
import { assembleVm, type AssembleOptions, type AssembledVm } from './assemble.js';
import type { ConfigInput } from './plan.js';
import { AssemblyError } from './errors.js';
import { exitCodeFor } from './exit-codes.js';

/** How runVm runs a VM: the assembly options plus signals, start hooks and the restart bound. */
export interface RunOptions extends AssembleOptions {
  /** Signals that stop the VM cleanly (default SIGINT, SIGTERM). Pass [] in tests. */
  signals?: NodeJS.Signals[];
  /**
   * Called after the VM is assembled and before its machine starts (the CLI installs its system call filter here);
   * the start waits for a returned promise.
   */
  beforeStart?: (vm: AssembledVm) => void | Promise<void>;
  /** Called once the machine started (tests, the API server). */
  onStarted?: (vm: AssembledVm) => void;
  /** Upper bound on restarts after guest resets with machine.onReset: restart (default 100). */
  maxRestarts?: number;
  /**
   * A VM already assembled from `input` (a migration's destination builds it before the source stops): run it
   * instead of assembling the first one; runVm owns it from here (it disposes it, also when it fails).
   */
  assembled?: AssembledVm;
}

/** How a runVm run ended: why the last VM stopped, the exit code for it, and how many restarts came before. */
export interface RunResult {
  reason: StopReason;
  exitCode: number;
  restarts: number;
}

/**
 * Assembles the VM, starts its Machine, waits for it to stop and maps the reason to an
 * exit code (see exit-codes.ts). SIGINT/SIGTERM stop the VM cleanly. A guest reset with
 * machine.onReset: restart tears the VM down and assembles it again.
 */
export async function runVm(input: ConfigInput, opts: RunOptions = {}): Promise<RunResult> {
  let restarts = 0;
  for (;;) {
    const vm =
      restarts === 0 && opts.assembled
        ? opts.assembled
        : await assembleVm(input, restarts === 0 ? opts : { ...opts, plan: undefined });
    const machine = vm.machine;
    if (!machine) {
      await vm.dispose();
      throw new AssemblyError(
        'NoMachine',
        `no plugin provides '${Tokens.Machine.name}': list the arch plugin in the config`,
      );
    }
    const handlers: [NodeJS.Signals, () => void][] = [];
    let reason: StopReason;
    const shutdown = new SignalShutdown(vm, machine);
    try {
      for (const sig of opts.signals ?? ['SIGINT', 'SIGTERM']) {
        const h = (): void => shutdown.signal(sig);
        process.on(sig, h);
        handlers.push([sig, h]);
      }
      try {
        await opts.beforeStart?.(vm);
        await machine.start();
      } catch (err) {
        await machine.stop({ kind: 'error', error: err }).catch(() => {});
        throw new AssemblyError(
          'Start',
          `the VM failed to start: ${(err as Error)?.message ?? String(err)}`,
          {},
          { cause: err },
        );
      }
      opts.onStarted?.(vm);
      reason = shutdown.outcome(await machine.stopped);
    } finally {
      shutdown.dispose();
      for (const [sig, h] of handlers) process.off(sig, h);
      await vm.dispose();
    }
    if (
      reason.kind === 'reset' &&
      vm.plan.config.machine.onReset === 'restart' &&
      restarts < (opts.maxRestarts ?? 100)
    ) {
      restarts++;
      vm.logger.info({ restarts }, 'guest reset: restarting the VM');
      continue;
    }
    if (reason.kind === 'error') vm.logger.error({ err: reason.error }, 'the VM stopped with an error');
    return { reason, exitCode: exitCodeFor(reason), restarts };
  }
}

/**
 * What SIGINT/SIGTERM do to a running VM: the first signal presses the machine's power button when it has one the
 * guest listens to, and stops the VM hard once machine.shutdownTimeoutMs passed; without a button, or on a second
 * signal, the VM stops at once. A guest that shut down after the button ends with the signal's reason (exit 130/143).
 */
export class SignalShutdown {
  private pressedBy?: NodeJS.Signals;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly vm: AssembledVm,
    private readonly machine: Machine,
  ) {}

  /** One signal arrived. */
  signal(sig: NodeJS.Signals): void {
    const { logger } = this.vm;
    if (this.pressedBy === undefined && this.pressButton()) {
      this.pressedBy = sig;
      const ms = this.vm.plan.config.machine.shutdownTimeoutMs;
      logger.info({ signal: sig, timeoutMs: ms }, 'power button pressed: waiting for the guest to shut down');
      this.timer = setTimeout(() => {
        logger.warn({ timeoutMs: ms }, 'the guest did not shut down in time: stopping the VM');
        this.stop(sig);
      }, ms);
      return;
    }
    logger.info({ signal: sig }, 'stopping the VM');
    this.stop(sig);
  }

  private pressButton(): boolean {
    try {
      return this.machine.powerButton?.() ?? false;
    } catch (err) {
      this.vm.logger.warn({ err }, 'the power button failed');
      return false;
    }
  }

  private stop(sig: NodeJS.Signals): void {
    clearTimeout(this.timer);
    void this.machine
      .stop({ kind: 'signal', signal: sig })
      .catch((err: unknown) => this.vm.logger.error({ err }, 'stop failed'));
  }

  /** The reason runVm reports: a guest's own shutdown after the button counts as stopped by the signal. */
  outcome(reason: StopReason): StopReason {
    if (this.pressedBy === undefined || reason.kind === 'error' || reason.kind === 'signal') return reason;
    this.vm.logger.info({ guest: reason.kind }, 'the guest shut down after the power button');
    return { kind: 'signal', signal: this.pressedBy };
  }

  /** Clears the hard-stop timer. */
  dispose(): void {
    clearTimeout(this.timer);
  }
}
