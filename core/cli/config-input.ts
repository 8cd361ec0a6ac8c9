import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { ConfigSource } from '../config/source.js';
import { applyOverrides } from '../config/overrides.js';
import { isQuickForm, quickConfig, QuickFormError, type QuickOptions } from './quick.js';

/** The options run and validate share: the quick form's flags and `--set`. */
export interface ConfigFlags extends QuickOptions {
  set?: string[];
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Adds the quick form's flags and `--set` to `cmd` (run, validate). */
export function addConfigOptions(cmd: Command): Command {
  return cmd
    .option('--kernel <file>', 'quick form: the kernel (bzImage or ELF vmlinux); builds the micro host around it')
    .option('--initramfs <file>', 'quick form: the initramfs')
    .option('--cmdline <text>', "quick form: the kernel command line (default: the micro host's)")
    .option('--cpus <n>', 'quick form: vCPUs (default 1)')
    .option('--memory <size>', 'quick form: guest memory, e.g. 512M, 2G (default 256M)')
    .option('--disk <spec>', 'quick form: path=FILE[,readonly][,format=raw|qcow2|auto] (repeatable)', collect)
    .option('--net <spec>', 'quick form: tap=NAME[,mac=MAC] (repeatable)', collect)
    .option(
      '--set <key=value>',
      'override a config key: machine.memory=2G, boot.cmdline=..., <plugin instance>.<key>=value (repeatable)',
      collect,
    );
}

/**
 * The config the command line describes: the YAML file, or the quick form's flags (not both), with every `--set`
 * applied. Throws QuickFormError or ConfigError.
 */
export function configFromArgs(file: string | undefined, flags: ConfigFlags): ConfigSource {
  const quick = isQuickForm(flags);
  if (file !== undefined && quick)
    throw new QuickFormError('give a config file or the quick form (--kernel ...), not both; --set changes a file');
  if (file === undefined && !quick) throw new QuickFormError('give a config file, or --kernel FILE for the quick form');
  const source =
    file !== undefined
      ? ConfigSource.fromFile(file)
      : ConfigSource.fromObject(quickConfig(flags), '<command line>', process.cwd());
  return applyOverrides(source, flags.set ?? []);
}

/** The YAML text of a config as `vmm run` takes it back (comments of a file kept, overrides applied). */
export const configText = (source: ConfigSource): string => source.doc.toString();

/**
 * A file holding the config for what needs one (`vmm run --sandbox`): the file itself when nothing changed it, else
 * a temporary copy (next to the file, so relative paths keep their meaning; the quick form's paths are absolute).
 * `cleanup` removes the copy.
 */
export function configFile(
  file: string | undefined,
  source: ConfigSource,
  changed: boolean,
): { file: string; cleanup: () => void } {
  if (file !== undefined && !changed) return { file, cleanup: () => {} };
  const dir = file !== undefined ? path.dirname(path.resolve(file)) : fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-'));
  const name = file !== undefined ? `.${path.basename(file)}.vmm-${process.pid}.yaml` : 'vm.yaml';
  const out = path.join(dir, name);
  fs.writeFileSync(out, configText(source), { mode: 0o600 });
  return {
    file: out,
    cleanup: () => {
      fs.rmSync(file !== undefined ? out : dir, { recursive: true, force: true });
    },
  };
}
