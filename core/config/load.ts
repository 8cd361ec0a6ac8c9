import { PluginEntrySchema, VmConfigSchema, type PluginEntry, type VmConfig } from './schema.js';
import { ConfigProblems } from './problems.js';
import { ConfigSource } from './source.js';
import { memoryRefusal, readHostMemory, type HostMemory } from './host-memory.js';

/**
 * A validated VM config (defaults filled in) and its parsed source, which plugins' config errors use to point at a line
 * of the same file.
 */
export interface LoadedVmConfig {
  config: VmConfig;
  source: ConfigSource;
}

/**
 * What could be read of a config that may have problems: the whole config when it is valid, else the sections and
 * `plugins:` entries that are valid on their own (so later checks still run on them).
 */
export interface CheckedVmConfig {
  /** The whole validated config; undefined when any part of it had a problem. */
  readonly config?: VmConfig;
  readonly machine?: VmConfig['machine'];
  readonly boot?: VmConfig['boot'];
  /** Each `plugins:` entry validated on its own (undefined where that entry is invalid), by list index. */
  readonly entries: readonly (PluginEntry | undefined)[];
}

/**
 * Validates a parsed config, adding every problem to `problems`: the schema (every issue, unknown keys with a "did
 * you mean"), then what depends on this host (guest memory against the host's RAM + swap, unless
 * `machine.overcommit`). Returns what could be read, for the checks that follow.
 */
export function checkVmConfig(
  source: ConfigSource,
  problems: ConfigProblems,
  host: HostMemory = readHostMemory(),
): CheckedVmConfig {
  const value = source.value;
  const config = source.check(VmConfigSchema, value, [], problems);
  let out: CheckedVmConfig;
  if (config) out = { config, machine: config.machine, boot: config.boot, entries: config.plugins };
  else {
    // Re-read the sections that are valid on their own, quietly: their issues are already recorded.
    const obj = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    const shape = VmConfigSchema.shape;
    const list = Array.isArray(obj.plugins) ? (obj.plugins as unknown[]) : [];
    out = {
      machine: shape.machine.safeParse(obj.machine).data,
      boot: shape.boot.safeParse(obj.boot).data,
      entries: list.map((e) => PluginEntrySchema.safeParse(e).data),
    };
  }
  if (out.machine) {
    const why = memoryRefusal(out.machine.memory, out.machine.overcommit, host);
    if (why) problems.add(source.error(['machine', 'memory'], why));
  }
  return out;
}

/**
 * Validates a parsed config: the schema, then what depends on this host (guest memory
 * against the host's RAM + swap, unless `machine.overcommit`). Errors point into the file;
 * several are thrown together as a ConfigErrors.
 */
export function validateVmConfig(source: ConfigSource, host: HostMemory = readHostMemory()): VmConfig {
  const problems = new ConfigProblems();
  const { config } = checkVmConfig(source, problems, host);
  problems.throwIfAny();
  return config!;
}

/** Reads, parses and validates a VM config file; errors name file, line, column and key. */
export function loadVmConfig(file: string): LoadedVmConfig {
  const source = ConfigSource.fromFile(file);
  return { config: validateVmConfig(source), source };
}

/** Same, from YAML text (tests, stdin); `host` replaces the host's memory figures (tests). */
export function parseVmConfig(text: string, file = '<config>', host?: HostMemory): LoadedVmConfig {
  const source = ConfigSource.fromText(text, file);
  return { config: validateVmConfig(source, host), source };
}
