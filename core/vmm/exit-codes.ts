import type { StopReason } from '../lifecycle.js';

/**
 * Exit codes of `vmm run` (and runVm):
 *   0   guest powered off, or reset with machine.onReset: exit, or stopped through the API
 *   1   the VM failed (device, vCPU or VMM error)
 *   2   bad input: invalid config, unknown/broken plugin, bad command line (nothing started)
 *   3   guest triple fault
 *   130 stopped by SIGINT, 143 by SIGTERM (128 + signal number)
 * With machine.onReset: restart a guest reset restarts the VM instead of exiting.
 */
export const ExitCode = { ok: 0, error: 1, badInput: 2, tripleFault: 3, sigint: 130, sigterm: 143 } as const;

/** The exit code for the reason a VM stopped (see ExitCode). */
export function exitCodeFor(reason: StopReason): number {
  switch (reason.kind) {
    case 'poweroff':
    case 'reset':
    case 'api':
      return ExitCode.ok;
    case 'triple-fault':
      return ExitCode.tripleFault;
    case 'signal':
      return reason.signal === 'SIGINT'
        ? ExitCode.sigint
        : reason.signal === 'SIGTERM'
          ? ExitCode.sigterm
          : 128 + (signalNumbers[reason.signal] ?? 0);
    case 'error':
      return ExitCode.error;
  }
}

const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
