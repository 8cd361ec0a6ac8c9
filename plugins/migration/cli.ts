import type { Command } from 'commander';
import { hostProblems } from '../../core/host/host-check.js';
import { seccompOnce, seccompOption } from '../../core/security/run-options.js';
import type { SeccompMode } from '../../core/security/seccomp.js';
import { ExitCode } from '../../core/vmm/exit-codes.js';
import { planVm } from '../../core/vmm/plan.js';
import * as path from 'node:path';
import { controlRequest } from './control.js';
import { snapshotConfigInput } from './restore.js';
import { runRestored } from './run-restored.js';
import { openSnapshot } from './snapshot-dir.js';

/** Options of `vmm restore`. */
interface RestoreCliOptions {
  verifyMemory: boolean;
  force?: boolean;
  seccomp: SeccompMode;
}

/** Adds `vmm snapshot|restore|pause|resume` to the vmm CLI. */
export function registerCommands(program: Command): void {
  program
    .command('snapshot')
    .description("snapshot a running VM into a new directory, through its migration plugin's control socket")
    .argument('<control>', "the VM's control socket (migration plugin config `control`)")
    .argument('<dir>', 'snapshot directory to create (must not exist or be empty)')
    .option('--leave-paused', 'leave the VM paused afterwards (default: it runs on)')
    .action(async (control: string, dir: string, o: { leavePaused?: boolean }) => {
      const r = await controlRequest(control, { op: 'snapshot', dir: path.resolve(dir), leavePaused: o.leavePaused });
      process.stdout.write(
        `snapshot ${dir}: ${Number(r.states)} states, ${Number(r.writtenBytes)} of ${Number(r.memoryBytes)} bytes ` +
          `of memory written, the guest stood still ${Number(r.pausedMs)} ms\n`,
      );
    });
  for (const op of ['pause', 'resume'] as const)
    program
      .command(op)
      .description(`${op} a running VM through its control socket`)
      .argument('<control>', "the VM's control socket")
      .action(async (control: string) => {
        const r = await controlRequest(control, { op });
        process.stdout.write(`${String(r.state)}\n`);
      });

  program
    .command('restore')
    .description('continue a VM from a snapshot directory (vmm snapshot / the API wrote it), in this process')
    .argument('<dir>', 'snapshot directory')
    .option('--no-verify-memory', "skip hashing the memory file's pages (sizes and the other checksums still count)")
    .option('--force', 'run on this host even where its KVM cannot boot an unmodified Linux kernel')
    .addOption(seccompOption())
    .action(async (dir: string, o: RestoreCliOptions) => {
      const snap = openSnapshot(dir, { verifyMemory: o.verifyMemory });
      const plan = o.force ? undefined : await planVm(snapshotConfigInput(snap));
      const problems = plan ? hostProblems(plan) : [];
      if (problems.length) {
        for (const p of problems) process.stderr.write(`vmm: ${p} (--force runs it here anyway)\n`);
        process.exitCode = ExitCode.error;
        return;
      }
      const r = await runRestored(snap, { plan, beforeStart: seccompOnce(o.seccomp) });
      process.exitCode = r.exitCode;
    });
}
