/**
 * Which CLI entry bin/vmm.js loads: the bundle's (<build>/bundle/hosts/cli/run-main.js, one file
 * per plugin plus shared chunks instead of ~400 modules) or the plain compiled tree's. The bundle
 * serves the commands whose start-up time matters and that it was checked for (`run` on this
 * host, `validate`, `serve`: the API's start-up is the `start.api` bench row; the migration plugin's `restore`,
 * `receive` and `migrate`: restore to a running vCPU and migration are bench rows); everything else, a stale
 * bundle, or VMM_BUNDLE=0 uses the plain tree.
 * Loaded before anything else: node built-ins only.
 */
import * as path from 'node:path';
import { staleReason } from './stamp.js';

/** The bundle's folder name inside a build folder (<build>/bundle). */
export const BUNDLE_DIR = 'bundle';
/** The CLI entry, relative to a build folder (and to the bundle inside it). */
export const CLI_ENTRY = path.join('hosts', 'cli', 'run-main.js');
const BUNDLED_COMMANDS = new Set(['run', 'validate', 'serve', 'restore', 'receive', 'migrate']);

/** The CLI entry chooseEntry picked: its path, whether it is the bundle's, and why not when it is not. */
export interface EntryChoice {
  /** Absolute path of the run-main.js to import. */
  readonly entry: string;
  readonly bundled: boolean;
  /** Why the plain tree was chosen (VMM_DEBUG prints it). */
  readonly why?: string;
}

/** The first word of the command line that is not an option (commander's command). */
export const commandOf = (args: readonly string[]): string | undefined => args.find((a) => !a.startsWith('-'));

/**
 * Picks the CLI entry for this command line: the bundle's run-main.js when the command is bundled (`run` without
 * `--sandbox`, `validate`, `serve`, `restore`, `receive`, `migrate`, or none but `--version`), VMM_BUNDLE is not '0'
 * and the bundle is fresh; the plain tree's otherwise.
 */
export function chooseEntry(
  distDir: string,
  repoRoot: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): EntryChoice {
  const plain = path.join(distDir, CLI_ENTRY);
  const use = (why: string): EntryChoice => ({ entry: plain, bundled: false, why });
  if (env.VMM_BUNDLE === '0') return use('VMM_BUNDLE=0');
  const cmd = commandOf(args);
  // `vmm --version` needs nothing the bundle lacks (the CLI prints it before any command runs, with no plugin's CLI
  // loaded); the plain tree took ~10 s of it in the nested sandbox (issue 18)
  const versionOnly = cmd === undefined && args.some((a) => a === '--version' || a === '-V');
  if (!versionOnly && (cmd === undefined || !BUNDLED_COMMANDS.has(cmd)))
    return use(`command '${cmd ?? ''}' is not bundled`);
  if (args.includes('--sandbox')) return use('--sandbox is not bundled');
  const dir = path.join(distDir, BUNDLE_DIR);
  const stale = staleReason(dir, repoRoot);
  if (stale !== undefined) return use(`bundle not used: ${stale}`);
  return { entry: path.join(dir, CLI_ENTRY), bundled: true };
}
