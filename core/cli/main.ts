import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { VmmError, oneLine } from '../errors.js';
import { discoverPlugins, type DiscoveredPlugin } from '../plugin/discovery.js';
import { loadPluginCli } from '../plugin/load-module.js';
import { problemsOf } from '../config/problems.js';
import { ExitCode } from '../vmm/exit-codes.js';
import { examplesFor } from './examples.js';
import { vmmVersion } from './version.js';
import { QuickFormError } from './quick.js';
import { addRunCommand, addValidateCommand, UsageError } from './run-command.js';
import { addPluginsCommand } from './plugins-command.js';
import { addSchemaCommand } from './schema-command.js';
import type { AssembledVm } from '../vmm/assemble.js';
import * as fs from 'node:fs';

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

/** The `vmm` command line (run, validate, plugins, schema), without the plugins' own commands. */
export function buildProgram(hooks: CliHooks = {}): Command {
  const program = new Command();
  program
    .name('vmm')
    .description('tsvmm: a virtual machine monitor built from plugins')
    .version(vmmVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError(false)
    .addHelpText('after', examplesFor('vmm'));
  addRunCommand(program, hooks, examplesFor('run'));
  addValidateCommand(program, examplesFor('validate'));
  addPluginsCommand(program, examplesFor('plugins'));
  addSchemaCommand(program, examplesFor('schema'));
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

/**
 * Whether this command line needs the plugins' commands (e.g. `vmm image`) loaded: only when its command is not
 * one of `program`'s own (a plugin's, or none: `vmm`, `vmm --help` list them all). `vmm run` should not pay for
 * importing every plugin's CLI, nor `vmm --version` (commander prints it before any command runs; in the nested
 * sandbox the plugins' CLIs took 5-12 s of it, issue 18).
 */
export function needsPluginCommands(program: Command, argv: readonly string[]): boolean {
  const args = argv.slice(2);
  const command = args.find((a) => !a.startsWith('-'));
  if (command === undefined) return !args.some((a) => a === '-V' || a === '--version');
  return !program.commands.some((c) => c.name() === command || c.aliases().includes(command));
}

/** Runs the `vmm` command line; resolves with the exit code. */
export async function main(argv: string[] = process.argv, hooks: CliHooks = {}): Promise<number> {
  const program = buildProgram(hooks);
  if (needsPluginCommands(program, argv)) {
    await addPluginCommands(program);
  }
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof QuickFormError) {
      process.stderr.write(`vmm: ${oneLine(err.message)}\n`);
      return ExitCode.badInput;
    }
    if (err instanceof CommanderError) {
      // commander already printed its message (or help/version, exitCode 0)
      return err.exitCode === 0 ? 0 : ExitCode.badInput;
    }
    if (err instanceof VmmError) {
      for (const p of problemsOf(err)) process.stderr.write(`vmm: ${p.message}\n`);
      if (process.env.VMM_DEBUG) process.stderr.write(`${err.stack}\n`);
      return err.name === 'AssemblyError' && err.kind === 'Start' ? ExitCode.error : ExitCode.badInput;
    }
    process.stderr.write(`vmm: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    return ExitCode.error;
  }
}
