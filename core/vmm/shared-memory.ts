import type { VmConfig } from '../config/schema.js';
import type { ConfigProblems } from '../config/problems.js';
import type { ConfigSource } from '../config/source.js';
import type { PluginInstance } from '../plugin/order.js';

/**
 * The memory backend a VM needs for its plugins: when a listed plugin's manifest says `sharedMemory` (it hands
 * guest RAM to another process, e.g. a vhost-user back end) and the config leaves `machine.memoryBackend` unset,
 * the VM gets `memfd`; `anonymous` written out is a problem pointing at the key. Returns the config to use.
 */
export function withSharedMemory(
  config: VmConfig,
  source: ConfigSource,
  instances: readonly PluginInstance[],
  problems: ConfigProblems,
): VmConfig {
  const sharing = instances.filter((i) => i.plugin.manifest.sharedMemory === true);
  if (sharing.length === 0) return config;
  const raw = source.value as { machine?: { memoryBackend?: unknown } } | undefined;
  const written = raw?.machine?.memoryBackend;
  if (written === undefined) return { ...config, machine: { ...config.machine, memoryBackend: 'memfd' } };
  if (config.machine.memoryBackend === 'anonymous') {
    const who = sharing.map((i) => `'${i.instance}' (${i.plugin.manifest.name})`).join(', ');
    problems.add(
      source.error(
        ['machine', 'memoryBackend'],
        `${who} hand${sharing.length > 1 ? '' : 's'} guest RAM to another process, which cannot map anonymous ` +
          'memory: use memfd (or file), or leave memoryBackend out',
      ),
    );
  }
  return config;
}
