import { VmConfigSchema, type VmConfig } from './schema.js';
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
 * Validates a parsed config: the schema, then what depends on this host (guest memory
 * against the host's RAM + swap, unless `machine.overcommit`). Errors point into the file.
 */
export function validateVmConfig(source: ConfigSource, host: HostMemory = readHostMemory()): VmConfig {
  const config = source.validate(VmConfigSchema, source.value);
  const why = memoryRefusal(config.machine.memory, config.machine.overcommit, host);
  if (why) throw source.error(['machine', 'memory'], why);
  return config;
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
