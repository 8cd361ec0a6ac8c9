import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { VmmError } from '../errors.js';
import { discoverPlugins, readPluginAt, type DiscoveredPlugin } from '../plugin/discovery.js';
import { loadPluginCli } from '../plugin/load-module.js';
import { ConfigSource } from '../config/source.js';
import { VmConfigSchema } from '../config/schema.js';
import { planVm } from '../vmm/plan.js';
import { runVm } from '../vmm/run.js';
import { hostProblems } from '../host/host-check.js';
import { ExitCode } from '../vmm/exit-codes.js';
import { seccompOnce, seccompOption } from '../security/run-options.js';
import { insideLandlock, runUnderLandlock } from '../security/landlock-run.js';
import type { SeccompMode } from '../security/seccomp.js';
import type { AssembledVm } from '../vmm/assemble.js';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A user-facing failure: printed as one line, no stack trace. */
class UsageExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

const fail = (msg: string): never => {
  process.stderr.write(`vmm: ${msg}\n`);
  throw new UsageExit(ExitCode.badInput);
};

function describePlugin(p: DiscoveredPlugin): string {
  const m = p.manifest;
  const list = (xs: readonly string[] | undefined) => (xs && xs.length ? xs.join(', ') : '-');
  return (
    `${m.name} ${m.version} [${p.source}]${m.description ? ` — ${m.description}` : ''}\n` +
    `    provides: ${list(m.provides)}\n    requires: ${list(m.requires)}${m.optional?.length ? `\n    optional: ${list(m.optional)}` : ''}` +
    `${m.uses?.length ? `\n    uses: ${list(m.uses)}` : ''}\n` +
    `    manifest: ${p.manifestPath}\n`
  );
}

/** What the host behind the CLI adds (hosts/cli/run-main.ts passes them; core never imports hosts/). */
export interface CliHooks {
  /** Runs `vmm run --sandbox <config>`: the VM inside the nested sandbox (hosts/sandbox). */
  runInSandbox?(config: string): Promise<{ exitCode?: number; report: string }>;
  /**
   * Adds the host's own subcommands (e.g. `serve`, `remote`) while the program is built, after the built-in ones;
   * they count as built in (plugin-contributed commands are not loaded for them). Plugins add theirs through their
   * manifest's `cli` module instead.
   */
  commands?(program: Command): void;
  /**
   * Starts the API server of `vmm run --api-socket PATH` (hosts/api): `onStarted` hands it each VM once it runs
   * (again after a restart), `close` stops it once the run ended.
   */
  startApi?(opts: { socketPath: string; eventMonitor?: string }): Promise<RunApi>;
}

/** The API server a `vmm run` holds (CliHooks.startApi). */
export interface RunApi {
  onStarted(vm: AssembledVm): void;
  close(): Promise<void>;
}

/** The `vmm` command line (run, validate, plugins), without the plugins' own commands. */
export function buildProgram(hooks: CliHooks = {}): Command {
  const program = new Command();
  program
    .name('vmm')
    .description('tsvmm: a virtual machine monitor built from plugins')
    .exitOverride()
    .showHelpAfterError(false);

  program
    .command('run')
    .description('assemble and run the VM described by a YAML config')
    .argument('<config>', 'VM config (YAML)')
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
    .option('--event-monitor <spec>', 'write VM events as JSON lines: path=FILE or fd=N (with --api-socket)')
    .action(
      async (
        config: string,
        opts: {
          sandbox?: boolean;
          force?: boolean;
          seccomp: SeccompMode;
          landlock?: boolean;
          apiSocket?: string;
          eventMonitor?: string;
        },
      ) => {
        if (opts.sandbox) {
          if (!hooks.runInSandbox) fail('--sandbox is not available: this entry point has no sandbox host');
          const r = await hooks.runInSandbox!(config);
          if (r.exitCode === undefined) process.stderr.write(`vmm: ${r.report}\n`);
          process.exitCode = r.exitCode ?? ExitCode.error;
          return;
        }
        // Planned once: the host checks look at the plugins, the run reuses the plan.
        const plan = opts.force ? undefined : await planVm(config);
        // Say so plainly before anything starts where a plugin cannot run on this host (kvm: PVM, no /dev/kvm).
        const problems = plan ? hostProblems(plan) : [];
        if (problems.length) {
          for (const p of problems) process.stderr.write(`vmm: ${p} (--force runs it here anyway)\n`);
          process.exitCode = ExitCode.error;
          return;
        }
        if (opts.landlock && !insideLandlock()) {
          process.exitCode = await runUnderLandlock(plan ?? (await planVm(config)), (l) =>
            process.stderr.write(`vmm: ${l}\n`),
          );
          return;
        }
        if (opts.eventMonitor && !opts.apiSocket) fail('--event-monitor needs --api-socket');
        if (opts.apiSocket && !hooks.startApi) fail('--api-socket is not available: this entry point has no API host');
        const api = opts.apiSocket
          ? await hooks.startApi!({ socketPath: opts.apiSocket, eventMonitor: opts.eventMonitor })
          : undefined;
        try {
          const r = await runVm(config, { plan, beforeStart: seccompOnce(opts.seccomp), onStarted: api?.onStarted });
          process.exitCode = r.exitCode;
        } finally {
          await api?.close();
        }
      },
    );

  program
    .command('validate')
    .description('check a config: schema, plugins, ordering and plugin configs (nothing is started)')
    .argument('<config>', 'VM config (YAML)')
    .action(async (config: string) => {
      const plan = await planVm(config);
      process.stdout.write(
        `${config}: ok (${plan.plugins.length} plugin${plan.plugins.length === 1 ? '' : 's'}: ${plan.plugins.map((p) => p.instance).join(' -> ') || 'none'})\n`,
      );
    });

  program
    .command('plugins')
    .description('list discovered plugins (and path plugins named in --config)')
    .option('-c, --config <file>', 'also list plugins named by path in this config')
    .option('--json', 'machine-readable output')
    .action((opts: { config?: string; json?: boolean }) => {
      const broken: string[] = [];
      const found = [...discoverPlugins({ onBroken: (e) => broken.push(e.message) }).values()];
      if (opts.config) {
        const source = ConfigSource.fromFile(opts.config);
        const cfg = source.validate(VmConfigSchema, source.value);
        cfg.plugins.forEach((e, i) => {
          if (e.path === undefined) return;
          try {
            found.push(readPluginAt(path.resolve(source.baseDir, e.path), 'path'));
          } catch (err) {
            throw source.error(['plugins', i, 'path'], (err as Error).message);
          }
        });
      }
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify(
            found.map((p) => ({ ...p.manifest, source: p.source, manifestPath: p.manifestPath })),
            null,
            2,
          )}\n`,
        );
      } else {
        for (const p of found) process.stdout.write(describePlugin(p));
        if (found.length === 0) process.stdout.write('no plugins found\n');
      }
      for (const b of broken) process.stderr.write(`vmm: warning: ${b}\n`);
    });
  hooks.commands?.(program);
  return program;
}

/** Adds subcommands from plugins whose manifest has `cli` (e.g. `vmm image ...` from qcow). */
async function addPluginCommands(program: Command): Promise<void> {
  let found: Map<string, DiscoveredPlugin>;
  try {
    found = discoverPlugins();
  } catch {
    return;
  }
  for (const p of found.values()) {
    if (!p.cliPath || !fs.existsSync(p.cliPath)) continue; // not built: `vmm plugins` still lists it
    try {
      const reg = await loadPluginCli(p);
      reg?.(program);
    } catch (err) {
      process.stderr.write(`vmm: warning: ${(err as Error).message}\n`);
    }
  }
}

/** Runs the `vmm` command line; resolves with the exit code. */
export async function main(argv: string[] = process.argv, hooks: CliHooks = {}): Promise<number> {
  const program = buildProgram(hooks);
  // Plugin-contributed commands (e.g. `vmm image`) are loaded only when the command is not one of
  // ours: `vmm run` should not pay for importing every plugin's CLI.
  const command = argv.slice(2).find((a) => !a.startsWith('-'));
  if (command === undefined || !program.commands.some((c) => c.name() === command || c.aliases().includes(command))) {
    await addPluginCommands(program);
  }
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof UsageExit) return err.code;
    if (err instanceof CommanderError) {
      // commander already printed its message (or help/version, exitCode 0)
      return err.exitCode === 0 ? 0 : ExitCode.badInput;
    }
    if (err instanceof VmmError) {
      process.stderr.write(`vmm: ${err.message}\n`);
      if (process.env.VMM_DEBUG) process.stderr.write(`${err.stack}\n`);
      return err.name === 'AssemblyError' && err.kind === 'Start' ? ExitCode.error : ExitCode.badInput;
    }
    process.stderr.write(`vmm: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    return ExitCode.error;
  }
}
