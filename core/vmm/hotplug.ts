import * as path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import type { Disposable } from '../bus/bus.js';
import { PluginEntrySchema, type PluginEntry } from '../config/schema.js';
import { ConfigSource } from '../config/source.js';
import type { Device, DeviceRegistry } from '../device/device.js';
import { VmmError } from '../errors.js';
import type { VmLifecycle } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import type { PciAttachment, PciBus } from '../pci/bus.js';
import { readPluginAt, type DiscoveredPlugin } from '../plugin/discovery.js';
import { registerPluginInstance } from '../plugin/instance.js';
import { loadPluginModule } from '../plugin/load-module.js';
import { Tokens } from '../tokens.js';
import { CORE_TOKENS, type VmPlan } from './plan.js';

/** Why a runtime device could not be added or removed; the VM keeps running either way. */
export class HotplugError extends VmmError<
  'UnknownPlugin' | 'BadConfig' | 'Duplicate' | 'NotAllowed' | 'Attach' | 'UnknownDevice' | 'EjectTimeout'
> {}

/**
 * A PCI hotplug controller (plugins/pci-hotplug, token `PciHotplug`): asks the guest to eject a function and
 * resolves once it did (ACPI eject), or rejects after `timeoutMs`.
 */
export interface PciHotplugController {
  /** Announces the slot's removal to the guest and waits for its eject; rejects with a one-line error on timeout. */
  requestEject(attachment: PciAttachment, timeoutMs: number): Promise<void>;
}

/** How removeDevice waits for the guest. */
export interface RemoveDeviceOptions {
  /** How long to wait for the guest's eject of a PCI function (ms, default DEFAULT_EJECT_TIMEOUT_MS). */
  readonly timeoutMs?: number;
}

/** Default wait for a guest's eject before removeDevice gives up (the device then stays). */
export const DEFAULT_EJECT_TIMEOUT_MS = 10_000;

/** Devices added to a VM after assembly: addDevice / removeDevice (AssembledVm's runtime half). */
export interface RuntimeDevices {
  /**
   * Builds one more plugin instance in the VM (its own scope, register, main built by injection, attach) and
   * activates its devices when the VM runs. A one-line HotplugError for an unknown plugin, a bad config, an id
   * already in use or a failed attach; nothing of the instance stays behind then.
   */
  addDevice(entry: PluginEntry): Promise<{ id: string }>;
  /**
   * Removes an instance addDevice added: for its PCI functions in a running VM, the guest is asked to eject them
   * first (PciHotplug) and the removal waits for it; then its Disposables run in reverse order.
   */
  removeDevice(id: string, opts?: RemoveDeviceOptions): Promise<void>;
  /** Ids of the instances added at runtime, in the order they were added. */
  runtimeDevices(): readonly string[];
}

/** What RuntimeDeviceSet works on: the VM's container, plan, lifecycle and logger. */
export interface RuntimeDeviceDeps {
  readonly container: DependencyContainer;
  readonly plan: VmPlan;
  readonly lifecycle: VmLifecycle;
  readonly logger: Logger;
  /** Check manifests like the boot-time plugins (assembleVm's setting). */
  readonly enforce: boolean;
}

interface RuntimeInstance {
  readonly id: string;
  readonly disposables: Disposable[];
  readonly devices: readonly Device[];
  readonly pci: PciAttachment[];
  removing?: Promise<void>;
}

const message = (err: unknown): string => (err as Error)?.message ?? String(err);

/**
 * The runtime devices of one assembled VM. Instances added here are disposed by disposeAll() (assembleVm's
 * dispose calls it before undoing the boot-time plugins, which they depend on).
 */
export class RuntimeDeviceSet implements RuntimeDevices {
  private readonly instances = new Map<string, RuntimeInstance>();
  private pending = new Set<string>();

  constructor(private readonly d: RuntimeDeviceDeps) {}

  runtimeDevices(): readonly string[] {
    return [...this.instances.keys()];
  }

  async addDevice(input: PluginEntry): Promise<{ id: string }> {
    const source = ConfigSource.fromObject(input, '<device>', this.d.plan.baseDir);
    let entry: PluginEntry;
    try {
      entry = source.validate(PluginEntrySchema, input);
    } catch (err) {
      throw new HotplugError('BadConfig', `bad device entry: ${message(err)}`, {}, { cause: err });
    }
    const plugin = this.find(entry);
    const { manifest } = plugin;
    const id = entry.id ?? manifest.name;
    if (this.d.plan.plugins.some((p) => p.instance === id) || this.instances.has(id) || this.pending.has(id))
      throw new HotplugError(
        'Duplicate',
        `a device or plugin instance '${id}' is already in the VM; give another 'id'`,
        {
          id,
        },
      );
    if (manifest.provides.length)
      throw new HotplugError(
        'NotAllowed',
        `plugin '${manifest.name}' provides ${manifest.provides.join(', ')}: only plugins that provide nothing can ` +
          `be added to a running VM (list it in the config)`,
        { plugin: manifest.name },
      );
    const c = this.d.container;
    const missing = manifest.requires.filter(
      (t) => !CORE_TOKENS.has(t) && !c.isRegistered(Symbol.for(`tsvmm.${t}`), true),
    );
    if (missing.length)
      throw new HotplugError(
        'NotAllowed',
        `plugin '${manifest.name}' requires ${missing.join(', ')}, which no plugin of this VM provides`,
        { plugin: manifest.name, missing },
      );
    this.pending.add(id);
    try {
      return { id: await this.build(id, entry, plugin, source) };
    } finally {
      this.pending.delete(id);
    }
  }

  private find(entry: PluginEntry): DiscoveredPlugin {
    if (entry.path !== undefined) {
      try {
        return readPluginAt(path.resolve(this.d.plan.baseDir, entry.path), 'path');
      } catch (err) {
        throw new HotplugError('UnknownPlugin', `no plugin at '${entry.path}': ${message(err)}`, {}, { cause: err });
      }
    }
    const found = this.d.plan.discovered.get(entry.name!);
    if (!found) throw new HotplugError('UnknownPlugin', `unknown plugin '${entry.name}'`, { plugin: entry.name });
    return found;
  }

  private async build(id: string, entry: PluginEntry, plugin: DiscoveredPlugin, source: ConfigSource): Promise<string> {
    const c = this.d.container;
    let config: unknown;
    let module;
    try {
      module = await loadPluginModule(plugin);
      config = module.configSchema ? source.validate(module.configSchema, entry.config ?? {}, ['config']) : undefined;
      if (!module.configSchema && entry.config !== undefined)
        throw new Error(`plugin '${plugin.manifest.name}' takes no config`);
    } catch (err) {
      throw new HotplugError('BadConfig', `device '${id}': ${message(err)}`, { id }, { cause: err });
    }
    const registry = c.resolve<DeviceRegistry>(Tokens.DeviceRegistry.token);
    const before = new Set(registry.all());
    const pciBus = c.isRegistered(Tokens.PciBus.token, true) ? c.resolve<PciBus>(Tokens.PciBus.token) : undefined;
    const pci: PciAttachment[] = [];
    const watch = pciBus?.onChange((ch) => {
      const at = pci.indexOf(ch.attachment);
      if (ch.kind === 'added') pci.push(ch.attachment);
      else if (at >= 0) pci.splice(at, 1);
    });
    let disposables: Disposable[] = [];
    try {
      disposables = await registerPluginInstance(
        c,
        module,
        {
          config,
          vm: this.d.plan.config,
          lifecycle: this.d.lifecycle,
          baseDir: this.d.plan.baseDir,
          instance: id,
          logger: this.d.logger.child({ plugin: id }),
        },
        { manifest: plugin.manifest, manifestPath: plugin.manifestPath, enforce: this.d.enforce },
      );
      const devices = registry.all().filter((dev) => !before.has(dev));
      const state = this.d.lifecycle.state;
      if (state === 'started' || state === 'paused') for (const dev of devices) await dev.activate?.();
      this.instances.set(id, { id, disposables, devices, pci });
    } catch (err) {
      await this.undo(disposables);
      throw new HotplugError('Attach', `device '${id}' could not be added: ${message(err)}`, { id }, { cause: err });
    } finally {
      watch?.dispose();
    }
    this.d.logger.info({ device: id, pci: pci.length }, 'device added');
    return id;
  }

  async removeDevice(id: string, opts: RemoveDeviceOptions = {}): Promise<void> {
    const inst = this.instances.get(id);
    if (!inst) {
      const boot = this.d.plan.plugins.some((p) => p.instance === id);
      throw new HotplugError(
        'UnknownDevice',
        boot ? `'${id}' is listed in the config; only devices added at runtime can be removed` : `no device '${id}'`,
        { id },
      );
    }
    inst.removing ??= this.remove(inst, opts.timeoutMs ?? DEFAULT_EJECT_TIMEOUT_MS).finally(() => {
      inst.removing = undefined;
    });
    return inst.removing;
  }

  private async remove(inst: RuntimeInstance, timeoutMs: number): Promise<void> {
    const c = this.d.container;
    const state = this.d.lifecycle.state;
    const guestSees = state === 'started' || state === 'paused';
    if (inst.pci.length && guestSees) {
      if (!c.isRegistered(Tokens.PciHotplug.token, true))
        throw new HotplugError(
          'NotAllowed',
          `device '${inst.id}' is on the PCI bus and the VM has no PCI hotplug controller (add the pci-hotplug plugin)`,
          { id: inst.id },
        );
      const ctl = c.resolve<PciHotplugController>(Tokens.PciHotplug.token);
      await Promise.all(inst.pci.map((a) => ctl.requestEject(a, timeoutMs)));
    }
    this.instances.delete(inst.id);
    await this.undo(inst.disposables);
    this.d.logger.info({ device: inst.id }, 'device removed');
  }

  private async undo(list: Disposable[]): Promise<void> {
    for (const d of [...list].reverse()) {
      try {
        await (d.dispose() as unknown);
      } catch (err) {
        this.d.logger.error({ err }, 'dispose of a runtime device failed');
      }
    }
    list.length = 0;
  }

  /** Disposes every runtime instance, newest first (VM teardown; no eject is asked). */
  async disposeAll(): Promise<void> {
    for (const inst of [...this.instances.values()].reverse()) {
      this.instances.delete(inst.id);
      await this.undo(inst.disposables);
    }
  }
}
