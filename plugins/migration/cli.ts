import type { Command } from 'commander';
import { hostProblems } from '../../core/host/host-check.js';
import { seccompOnce, seccompOption } from '../../core/security/run-options.js';
import type { SeccompMode } from '../../core/security/seccomp.js';
import { ExitCode } from '../../core/vmm/exit-codes.js';
import { planVm } from '../../core/vmm/plan.js';
import { markStartup } from '../../core/vmm/timings.js';
import * as path from 'node:path';
import { controlRequest } from './control.js';
import { snapshotConfigInput } from './restore.js';
import { runRestored } from './run-restored.js';
import { openSnapshot } from './snapshot-dir.js';
import { runReceived } from './receive.js';
import { runClones } from './clone.js';

/** Options of `vmm restore`. */
interface RestoreCliOptions {
  verifyMemory: boolean;
  clone?: number;
  cloneDir?: string;
  force?: boolean;
  seccomp?: SeccompMode;
}

/** Adds `vmm snapshot|restore|migrate|receive|pause|resume` to the vmm CLI. */
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
  program
    .command('migrate')
    .description("live-migrate a running VM to a `vmm receive` (through the VM's control socket)")
    .argument('<control>', "the VM's control socket (migration plugin config `control`)")
    .argument('<url>', 'where `vmm receive` listens: tcp:HOST:PORT or unix:PATH')
    .option('--downtime <ms>', 'longest the guest may stand still for the last copy', (v) => Number(v), 300)
    .action(async (control: string, url: string, o: { downtime: number }) => {
      const r = await controlRequest(control, { op: 'migrate', url, downtimeMs: o.downtime }, (line) => {
        const p = line.progress as Record<string, number> | undefined;
        if (p)
          process.stdout.write(
            `round ${p.round}: ${p.sentBytes} bytes sent, ${p.dirtyBytes} dirty, ${p.bytesPerSecond} bytes/s` +
              `${p.estimateMs === undefined ? '' : `, the last copy would take ~${p.estimateMs} ms`}` +
              `${p.throttlePercent ? `, vCPUs held ${p.throttlePercent} % of the time` : ''}\n`,
          );
      });
      process.stdout.write(
        `migrated to ${url}: ${Number(r.rounds)} rounds, ${Number(r.sentBytes)} bytes, ` +
          `the guest stopped ${Number(r.downtimeMs)} ms before the hand-over\n`,
      );
    });

  program
    .command('receive')
    .description('wait for one live migration on URL and run the VM it brings, like vmm run')
    .argument('<url>', 'tcp:HOST:PORT or unix:PATH to listen on')
    .option('--memory-dir <dir>', 'folder for the incoming guest memory (default /dev/shm)')
    .addOption(seccompOption())
    .action(async (url: string, o: { memoryDir?: string; seccomp?: SeccompMode }) => {
      const r = await runReceived(url, {
        memoryDir: o.memoryDir,
        onListening: (a) => process.stderr.write(`vmm: listening on ${a}\n`),
        beforeStart: seccompOnce(o.seccomp),
      });
      process.exitCode = r.exitCode;
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
    .option(
      '--clone <n>',
      'run N clones at once: disks become qcow2 overlays over the snapshotted images, NICs get fresh MACs, ' +
        'consoles go to files in each clone folder',
      (v) => Number(v),
    )
    .option('--clone-dir <dir>', 'where the clone folders go (default: DIR/clones)')
    .addOption(seccompOption())
    .action(async (dir: string, o: RestoreCliOptions) => {
      if (o.clone !== undefined) {
        process.exitCode = await runClones(dir, o.clone, {
          verifyMemory: o.verifyMemory,
          cloneDir: o.cloneDir,
          onStarted: (clones) => {
            for (const c of clones) process.stderr.write(`vmm: clone ${c.info.index} runs in ${c.info.dir}\n`);
          },
        });
        return;
      }
      markStartup('restore: CLI ready');
      // the memory file is hashed in a worker while the VM is assembled; runRestored waits for it before the state
      const snap = openSnapshot(dir, { verifyMemory: o.verifyMemory, verifyInBackground: true });
      markStartup('restore: snapshot opened');
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
