import type { Command } from 'commander';
import { planVm, type VmPlan } from '../vmm/plan.js';
import { runVm } from '../vmm/run.js';
import { hostProblems } from '../host/host-check.js';
import { ExitCode } from '../vmm/exit-codes.js';
import { seccompOnce, seccompOption, seccompOverride } from '../security/run-options.js';
import { insideLandlock, runUnderLandlock } from '../security/landlock-run.js';
import type { SeccompMode } from '../security/seccomp.js';
import { addConfigOptions, configFile, configFromArgs, configText, type ConfigFlags } from './config-input.js';
import { addLogOptions, cliLogger, type LogFlags } from './logging.js';
import type { CliHooks } from './main.js';

/** What `vmm run` was given besides the config. */
interface RunFlags extends ConfigFlags, LogFlags {
  sandbox?: boolean;
  force?: boolean;
  seccomp?: SeccompMode;
  landlock?: boolean;
  printConfig?: boolean;
  apiSocket?: string;
  eventMonitor?: string;
}

/** A one-line user-facing failure of a command (printed as `vmm: <message>`, exit 2). */
export class UsageError extends Error {}

/** Adds `vmm run [config]`: a YAML file or the quick form, `--set`, logging, sandbox, seccomp and Landlock flags. */
export function addRunCommand(program: Command, hooks: CliHooks, examples: string): void {
  const cmd = program
    .command('run')
    .description('check, assemble and run the VM a YAML config (or the quick form) describes')
    .argument('[config]', 'VM config (YAML); or leave it out and use the quick form (--kernel ...)');
  addConfigOptions(cmd)
    .option('--print-config', 'print the config (YAML, as vmm run takes it back) instead of running it')
    .option(
      '--sandbox',
      'run inside the nested sandbox (a QEMU-TCG Linux with a real /dev/kvm), for hosts whose KVM cannot boot Linux',
    )
    .option(
      '--force',
      'run on this host even where its KVM cannot boot an unmodified Linux kernel (tiny hand-made guests)',
    )
    .addOption(seccompOption())
    .option(
      '--landlock',
      'limit the filesystem to the paths the config names (and what Node needs), where the kernel has Landlock',
    )
    .option('--api-socket <path>', "serve Cloud Hypervisor's REST API for this VM on a Unix socket")
    .option('--event-monitor <spec>', 'write VM events as JSON lines: path=FILE or fd=N (with --api-socket)');
  addLogOptions(cmd)
    .addHelpText('after', examples)
    .action(async (config: string | undefined, opts: RunFlags) => {
      // --seccomp is machine.seccomp's override (the vCPU threads' filter follows it too)
      const sets = [...(opts.set ?? []), ...seccompOverride(opts.seccomp)];
      const source = configFromArgs(config, { ...opts, set: sets });
      if (opts.printConfig) {
        process.stdout.write(configText(source));
        return;
      }
      if (opts.sandbox) {
        if (!hooks.runInSandbox)
          throw new UsageError('--sandbox is not available: this entry point has no sandbox host');
        const file = configFile(config, source, sets.length > 0);
        try {
          const r = await hooks.runInSandbox(file.file);
          if (r.exitCode === undefined) process.stderr.write(`vmm: ${r.report}\n`);
          process.exitCode = r.exitCode ?? ExitCode.error;
        } finally {
          file.cleanup();
        }
        return;
      }
      const logger = cliLogger(opts);
      // Planned once, with every check before start (files, limits, plugins' own): the run reuses the plan.
      const plan: VmPlan = await planVm(source, { checks: true });
      // Say so plainly before anything starts where a plugin cannot run on this host (kvm: PVM, no /dev/kvm).
      const problems = opts.force ? [] : hostProblems(plan);
      if (problems.length) {
        for (const p of problems) process.stderr.write(`vmm: ${p} (--force runs it here anyway)\n`);
        process.exitCode = ExitCode.error;
        return;
      }
      if (opts.landlock && !insideLandlock()) {
        process.exitCode = await runUnderLandlock(plan, (l) => process.stderr.write(`vmm: ${l}\n`));
        return;
      }
      if (opts.eventMonitor && !opts.apiSocket) throw new UsageError('--event-monitor needs --api-socket');
      if (opts.apiSocket && !hooks.startApi)
        throw new UsageError('--api-socket is not available: this entry point has no API host');
      const api = opts.apiSocket
        ? await hooks.startApi!({ socketPath: opts.apiSocket, eventMonitor: opts.eventMonitor })
        : undefined;
      try {
        const r = await runVm(source, {
          plan,
          logger,
          beforeStart: seccompOnce(),
          onStarted: api?.onStarted,
        });
        process.exitCode = r.exitCode;
      } finally {
        await api?.close();
      }
    });
}

/** Adds `vmm validate [config]`: every check `vmm run` makes before it starts; every problem, one line each. */
export function addValidateCommand(program: Command, examples: string): void {
  const cmd = program
    .command('validate')
    .description(
      'check a config as vmm run would before starting: schema, plugins, ordering, plugin configs, the files it ' +
        'names, memory and vCPUs against the host; every problem is listed (nothing is started)',
    )
    .argument('[config]', 'VM config (YAML); or the quick form (--kernel ...)');
  addConfigOptions(cmd)
    .addHelpText('after', examples)
    .action(async (config: string | undefined, opts: ConfigFlags) => {
      const plan = await planVm(configFromArgs(config, opts), { checks: true });
      for (const p of hostProblems(plan)) process.stderr.write(`vmm: note: on this host: ${p}\n`);
      const n = plan.plugins.length;
      const order = plan.plugins.map((p) => p.instance).join(' -> ') || 'none';
      process.stdout.write(`${config ?? '<command line>'}: ok (${n} plugin${n === 1 ? '' : 's'}: ${order})\n`);
    });
}
