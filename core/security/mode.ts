/**
 * `--seccomp` / `machine.seccomp`: `true` kills the process on a call outside the allow-list, `log` only logs it,
 * `false` installs nothing.
 */
export type SeccompMode = 'true' | 'log' | 'false';
/** The accepted `--seccomp` values, in the order help texts list them. */
export const SECCOMP_MODES: readonly SeccompMode[] = ['true', 'log', 'false'];
/**
 * The default: on. Checked on the linux tier's guests in the sandbox (every vmm run guest with the process filter,
 * every guest with the vCPU-thread filter).
 */
export const SECCOMP_DEFAULT: SeccompMode = 'true';
