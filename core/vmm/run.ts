import { Tokens } from '../tokens.js';
import type { StopReason } from '../lifecycle.js';
import { assembleVm, type AssembleOptions, type AssembledVm } from './assemble.js';
import type { ConfigInput } from './plan.js';
import { AssemblyError } from './errors.js';
import { exitCodeFor } from './exit-codes.js';

/** How runVm runs a VM: the assembly options plus signals, start hooks and the restart bound. */
export interface RunOptions extends AssembleOptions {
  /** Signals that stop the VM cleanly (default SIGINT, SIGTERM). Pass [] in tests. */
  signals?: NodeJS.Signals[];
  /** Called after the VM is assembled and before its machine starts (the CLI installs its system call filter here). */
  beforeStart?: (vm: AssembledVm) => void;
  /** Called once the machine started (tests, the API server). */
  onStarted?: (vm: AssembledVm) => void;
  /** Upper bound on restarts after guest resets with machine.onReset: restart (default 100). */
  maxRestarts?: number;
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
    const vm = await assembleVm(input, restarts === 0 ? opts : { ...opts, plan: undefined });
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
    try {
      for (const sig of opts.signals ?? ['SIGINT', 'SIGTERM']) {
        const h = (): void => {
          vm.logger.info({ signal: sig }, 'stopping the VM');
          void machine
            .stop({ kind: 'signal', signal: sig })
            .catch((err: unknown) => vm.logger.error({ err }, 'stop failed'));
        };
        process.on(sig, h);
        handlers.push([sig, h]);
      }
      try {
        opts.beforeStart?.(vm);
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
      reason = await machine.stopped;
    } finally {
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
