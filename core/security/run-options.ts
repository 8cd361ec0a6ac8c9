import { Option } from 'commander';
import type { AssembledVm } from '../vmm/assemble.js';
import { SECCOMP_DEFAULT, SECCOMP_MODES, type SeccompMode } from './mode.js';
import { installSeccomp } from './seccomp.js';

export { SECCOMP_DEFAULT } from './mode.js';

/**
 * `vmm run --seccomp true|log|false`, as Cloud Hypervisor's flag. Left out, `machine.seccomp` of the config decides
 * (default SECCOMP_DEFAULT); given, it overrides that key (`seccompOverride`).
 */
export function seccompOption(): Option {
  return new Option(
    '--seccomp <mode>',
    'system call filters after set-up: true (a call outside the allow-list kills the VMM), ' +
      'log (only logged: dmesg shows "audit: type=1326 ... syscall=N"), false (none); ' +
      `default: the config's machine.seccomp, else ${SECCOMP_DEFAULT}`,
  ).choices([...SECCOMP_MODES]);
}

/** The `--set` expression that makes `--seccomp <mode>` override the config's machine.seccomp ([] when not given). */
export const seccompOverride = (mode: string | undefined): string[] =>
  mode === undefined ? [] : [`machine.seccomp=${mode}`];

/**
 * A runVm `beforeStart` hook that installs the process-wide filter once, as the config's machine.seccomp says (a
 * restart after a guest reset keeps the filter it has), after the VM is assembled and before the guest's first
 * instruction (so before the vCPU threads start: they stack their own narrower filter on it). `override` (restore and
 * receive, whose config comes from a snapshot or a stream) wins over the config for the process filter.
 */
export function seccompOnce(override?: SeccompMode): (vm: AssembledVm) => void {
  let done = false;
  return (vm) => {
    if (done) return;
    done = true;
    const mode = override ?? vm.plan.config.machine.seccomp;
    const r = installSeccomp(mode);
    if (r?.unsupported) vm.logger.warn({ mode }, `seccomp: no filter: ${r.unsupported}`);
    else if (r)
      vm.logger.debug(r, `seccomp filter installed on every thread (${r.allowed} system calls allowed, mode ${mode})`);
  };
}
