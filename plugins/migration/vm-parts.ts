import type { DeviceRegistry } from '../../core/device/device.js';
import type { Vm } from '../../core/hypervisor/hypervisor.js';
import type { VmLifecycle } from '../../core/lifecycle.js';
import type { Logger } from '../../core/logger.js';
import type { Machine } from '../../core/machine.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { StateRegistry } from '../../core/state/registry.js';
import { Tokens } from '../../core/tokens.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { MigrationError } from './errors.js';

/** A plugin listed in the VM's config, by the name and version that built it (recorded in snapshots). */
export interface PluginVersion {
  instance: string;
  name: string;
  version: string;
}

/** Where the VM came from: its config as written (paths relative to baseDir) and the plugins that built it. */
export interface VmOrigin {
  /** The config as parsed from YAML (before defaults), so a restore plans the same VM. */
  config: unknown;
  /** The folder relative paths in the config start from. */
  baseDir: string;
  plugins: PluginVersion[];
}

/** What pausing, saving and moving a VM need of it. */
export interface VmParts {
  machine: Machine;
  lifecycle: VmLifecycle;
  states: StateRegistry;
  devices: DeviceRegistry;
  memory: GuestMemory;
  /** The hypervisor's VM (dirty log), when a plugin provides one. */
  vm?: Vm;
  logger: Logger;
  origin: VmOrigin;
}

/** The parts of an assembled VM; refuses a VM without a machine or guest memory. */
export function partsOf(vm: AssembledVm): VmParts {
  const c = vm.container;
  if (!vm.machine) throw new MigrationError('State', 'the VM has no machine (no arch plugin listed)');
  if (!c.isRegistered(Tokens.GuestMemory.token, true))
    throw new MigrationError('State', 'the VM has no guest memory (no arch plugin listed)');
  return {
    machine: vm.machine,
    lifecycle: vm.lifecycle,
    states: c.resolve(Tokens.StateRegistry.token),
    devices: c.resolve(Tokens.DeviceRegistry.token),
    memory: c.resolve(Tokens.GuestMemory.token),
    vm: c.isRegistered(Tokens.Vm.token, true) ? c.resolve(Tokens.Vm.token) : undefined,
    logger: vm.logger,
    origin: {
      config: vm.plan.source.value,
      baseDir: vm.plan.baseDir,
      plugins: vm.plan.plugins.map((p) => ({
        instance: p.instance,
        name: p.plugin.manifest.name,
        version: p.plugin.manifest.version,
      })),
    },
  };
}

/**
 * The parts of a VM whose state a snapshot or migration can carry: refused (MigrationError 'State') while devices
 * added at run time are plugged, since the VM a restore or destination builds comes from the config alone (their
 * state would be refused there, or lost); remove them first, or put them in the config.
 */
export function savablePartsOf(vm: AssembledVm, what: 'snapshot' | 'migrate'): VmParts {
  const added = vm.runtimeDevices();
  if (added.length)
    throw new MigrationError(
      'State',
      `cannot ${what} a VM with devices added at run time (${added.join(', ')}): a snapshot or migration carries ` +
        'the devices of its config only; remove them first, or list them in the config',
      { devices: added },
    );
  return partsOf(vm);
}
