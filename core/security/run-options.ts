import { Option } from 'commander';
import type { AssembledVm } from '../vmm/assemble.js';
import { SECCOMP_MODES, installSeccomp, type SeccompMode } from './seccomp.js';

/**
 * The default of `--seccomp`: on. Checked on the linux tier's `vmm run` guests in the sandbox (virtio-net
 * over tap and over a unix datagram socket, serial console, 64 MiB each way over TCP) with the filter on.
 */
export const SECCOMP_DEFAULT: SeccompMode = 'true';

/** `vmm run --seccomp true|log|false`, as Cloud Hypervisor's flag. */
export function seccompOption(): Option {
  return new Option(
    '--seccomp <mode>',
    'system call filter after set-up: true (a call outside the allow-list kills the VMM), ' +
      'log (only logged: dmesg shows "audit: type=1326 ... syscall=N"), false (none)',
  )
    .choices([...SECCOMP_MODES])
    .default(SECCOMP_DEFAULT);
}

/**
 * A runVm `beforeStart` hook that installs the filter once (a restart after a guest reset keeps the
 * filter it has), after the VM is assembled and before the guest's first instruction.
 */
export function seccompOnce(mode: SeccompMode): (vm: AssembledVm) => void {
  let done = false;
  return (vm) => {
    if (done) return;
    done = true;
    const r = installSeccomp(mode);
    if (r)
      vm.logger.debug(r, `seccomp filter installed on every thread (${r.allowed} system calls allowed, mode ${mode})`);
  };
}
