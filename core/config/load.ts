import { VmConfigSchema, type VmConfig } from './schema.js';
import { ConfigSource } from './source.js';

export interface LoadedVmConfig {
  config: VmConfig;
  source: ConfigSource;
}

/** Reads, parses and validates a VM config file; errors name file, line, column and key. */
export function loadVmConfig(file: string): LoadedVmConfig {
  const source = ConfigSource.fromFile(file);
  return { config: source.validate(VmConfigSchema, source.value), source };
}

/** Same, from YAML text (tests, stdin). */
export function parseVmConfig(text: string, file = '<config>'): LoadedVmConfig {
  const source = ConfigSource.fromText(text, file);
  return { config: source.validate(VmConfigSchema, source.value), source };
}
