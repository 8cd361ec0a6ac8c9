import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import type { VmPlan } from '../vmm/plan.js';
import { restrictFilesystem } from './landlock.js';
import { landlockRules } from './landlock-paths.js';
import { openKernelLog, seccompDeathReport } from './seccomp-report.js';

/** Set in the VMM process that `vmm run --landlock` starts inside its Landlock domain. */
export const LANDLOCKED_ENV = 'TSVMM_LANDLOCKED';

/** True in the process `runUnderLandlock` started (it must not start another). */
export const insideLandlock = (): boolean => process.env[LANDLOCKED_ENV] === '1';

/**
 * `vmm run --landlock`: Landlock binds the calling thread and what it starts afterwards, but Node's
 * thread pool is already running by the time a config is read, so this process restricts its main
 * thread to the config's paths (landlock-paths.ts) and runs the VMM as a child of it (the same command
 * line): that process, and all its threads, start inside the domain. Signals are passed on; the
 * child's exit status (or its fatal signal, SIGSYS from seccomp included) becomes this process's.
 */
export async function runUnderLandlock(plan: VmPlan, log: (line: string) => void): Promise<number> {
  const rules = landlockRules(plan);
  const kmsg = openKernelLog(); // opened before the domain (which leaves /dev/kmsg out), for a SIGSYS report
  const abi = restrictFilesystem(rules);
  log(`landlock (ABI ${abi}): the filesystem is limited to ${rules.length} paths`);
  const child = spawn(process.execPath, process.argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, [LANDLOCKED_ENV]: '1' },
  });
  const forward = (sig: NodeJS.Signals) => () => {
    child.kill(sig);
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
    child.once('exit', (c, s) => r([c, s])),
  );
  for (const [s, h] of handlers) process.off(s, h);
  if (signal === 'SIGSYS') log(`the VMM (pid ${child.pid}) was ${seccompDeathReport(child.pid!, kmsg)}`);
  if (kmsg !== undefined) closeSync(kmsg);
  if (signal) process.kill(process.pid, signal); // die the same way (the shell then says "Bad system call" for SIGSYS)
  return code ?? 1;
}
