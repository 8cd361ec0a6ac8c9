import type { InjectionToken } from 'tsyringe';
import type { GuestMemory, GuestMemoryFactory } from './memory/guest-memory.js';
import type { Bus } from './bus/bus.js';
import type { Hypervisor, Vm, VcpuRunner } from './hypervisor/hypervisor.js';
import type { DeviceRegistry } from './device/device.js';
import type { EventFdFactory, EventLoop } from './events/event-loop.js';
import type { VmLifecycle } from './lifecycle.js';
import type { DiskFormat } from './block/disk.js';
import type { KernelCmdline, Resources } from './platform/resources.js';
import type { PlatformLayout } from './platform/layout.js';
import type { Interrupts } from './interrupts/interrupts.js';
import type { Machine } from './machine.js';
import type { Logger } from './logger.js';
import type { VmConfig } from './config/schema.js';
import type { VirtioTransportHost } from './virtio/transport.js';
import type { HostFiles } from './host/host-files.js';
import type { AcpiTables } from './acpi/tables.js';
import type { StateRegistry } from './state/registry.js';
import type { PluginContext } from './plugin/plugin.js';
import type { PciBus } from './pci/bus.js';
import type { PciHotplugController } from './vmm/hotplug.js';
import type { BalloonControl } from './device/balloon.js';

/**
 * Injection tokens, one per interface, declared once here. Plugin manifests name
 * them by `name` in `provides` / `requires`. A `singular` token may have one
 * provider in a VM; a `multiple` token collects every provider (resolve with injectAll).
 */
export interface TokenInfo<T> {
  readonly name: string;
  readonly token: InjectionToken<T>;
  readonly cardinality: 'singular' | 'multiple';
}

function defineToken<T>(name: string, cardinality: 'singular' | 'multiple' = 'singular'): TokenInfo<T> {
  return { name, token: Symbol.for(`tsvmm.${name}`) as InjectionToken<T>, cardinality };
}

/**
 * Every VM-wide service token, by name: what plugins list in their manifests (provides/requires/optional) and inject.
 * Each is `Symbol.for('tsvmm.<Name>')`, so plain-JS plugins outside the tree reach the same ones.
 */
export const Tokens = {
  VmConfig: defineToken<VmConfig>('VmConfig'),
  Logger: defineToken<Logger>('Logger'),
  Lifecycle: defineToken<VmLifecycle>('Lifecycle'),
  EventLoop: defineToken<EventLoop>('EventLoop'),
  EventFdFactory: defineToken<EventFdFactory>('EventFdFactory'),
  GuestMemoryFactory: defineToken<GuestMemoryFactory>('GuestMemoryFactory'),
  GuestMemory: defineToken<GuestMemory>('GuestMemory'),
  Bus: defineToken<Bus>('Bus'),
  Hypervisor: defineToken<Hypervisor>('Hypervisor'),
  Vm: defineToken<Vm>('Vm'),
  VcpuRunner: defineToken<VcpuRunner>('VcpuRunner'),
  DeviceRegistry: defineToken<DeviceRegistry>('DeviceRegistry'),
  /** Every Snapshottable of the VM (core/state), walked in a deterministic order for snapshots and migration. */
  StateRegistry: defineToken<StateRegistry>('StateRegistry'),
  /** Ports, MMIO windows, interrupt lines and MSI GSIs: allocate, reserve, free (core/platform). */
  Resources: defineToken<Resources>('Resources'),
  /** Legacy lines and MSI vector groups; the only user of irq lines, GSI routing and irqfds (core/interrupts). */
  Interrupts: defineToken<Interrupts>('Interrupts'),
  /** The arch's windows, legacy line numbers and irqchip routes (registered by the arch plugin). */
  PlatformLayout: defineToken<PlatformLayout>('PlatformLayout'),
  KernelCmdline: defineToken<KernelCmdline>('KernelCmdline'),
  DiskFormat: defineToken<DiskFormat>('DiskFormat', 'multiple'),
  Machine: defineToken<Machine>('Machine'),
  /** Files a host names by scheme in the config (`guestkit:vmlinux`): core/host/host-files.ts. */
  HostFiles: defineToken<HostFiles>('HostFiles'),
  /**
   * Attaches transport-independent virtio devices; one per transport (mmio, pci) in a VM,
   * each named (VirtioTransportHost.name): resolve all, pick with selectVirtioTransport.
   */
  VirtioTransport: defineToken<VirtioTransportHost>('VirtioTransport', 'multiple'),
  /** The VM's ACPI tables (acpi plugin): the platform and devices contribute, the machine builds them. */
  AcpiTables: defineToken<AcpiTables>('AcpiTables'),
  /** PCI segment 0: plug functions in at boot or at runtime (provided by plugins/pci; core/pci). */
  PciBus: defineToken<PciBus>('PciBus'),
  /** ACPI PCI hotplug: asks the guest to eject a function (plugins/pci-hotplug; core/vmm/hotplug.ts). */
  PciHotplug: defineToken<PciHotplugController>('PciHotplug'),
  /** The VM's memory balloon (virtio-balloon plugin): change its target at runtime, read the guest's reports. */
  Balloon: defineToken<BalloonControl>('Balloon'),
} as const;

/** The name of one VM-wide token (a key of Tokens), as manifests spell it. */
export type TokenName = keyof typeof Tokens;

/**
 * Per-instance tokens: registered by the kernel in each plugin instance's own container (see
 * core/plugin/scope.ts), so a plugin listed twice (virtio-blk disk1, disk2) injects its own
 * values. Always allowed, never listed in a manifest.
 */
export const PluginTokens = {
  /** The instance's config, validated by the plugin's `configSchema` (undefined without one). */
  PluginConfig: defineToken<unknown>('PluginConfig'),
  /** The VM's logger with `{ plugin: <instance> }` bound. */
  PluginLogger: defineToken<Logger>('PluginLogger'),
  /** The instance name (`id:` in the YAML, else the plugin's name). */
  PluginInstance: defineToken<string>('PluginInstance'),
  /** The whole PluginContext of the instance (baseDir, vm config, lifecycle...). */
  PluginContext: defineToken<PluginContext>('PluginContext'),
} as const;

/**
 * The manifest name of a framework token (`Symbol.for('tsvmm.Bus')` -> 'Bus'); undefined for
 * any other injection token (a class, a string, a local symbol).
 */
export function manifestTokenName(token: unknown): string | undefined {
  if (typeof token !== 'symbol') return undefined;
  const key = Symbol.keyFor(token);
  return key?.startsWith('tsvmm.') ? key.slice('tsvmm.'.length) : undefined;
}

/** Shorthand for `@inject(...)`: `@inject(GUEST_MEMORY)`. */
export const GUEST_MEMORY = Tokens.GuestMemory.token;
/** Shorthand for `Tokens.Bus.token`, for `@inject(...)`. */
export const BUS = Tokens.Bus.token;
/** Shorthand for `Tokens.Hypervisor.token`, for `@inject(...)`. */
export const HYPERVISOR = Tokens.Hypervisor.token;
/** Shorthand for `Tokens.Vm.token`, for `@inject(...)`. */
export const VM = Tokens.Vm.token;
/** Shorthand for `Tokens.EventLoop.token`, for `@inject(...)`. */
export const EVENT_LOOP = Tokens.EventLoop.token;
/** Shorthand for `Tokens.EventFdFactory.token`, for `@inject(...)`. */
export const EVENT_FD_FACTORY = Tokens.EventFdFactory.token;
/** Shorthand for `Tokens.DeviceRegistry.token`, for `@inject(...)`. */
export const DEVICE_REGISTRY = Tokens.DeviceRegistry.token;
/** Shorthand for `Tokens.Lifecycle.token`, for `@inject(...)`. */
export const LIFECYCLE = Tokens.Lifecycle.token;
/** Shorthand for `Tokens.Logger.token`, for `@inject(...)`. */
export const LOGGER = Tokens.Logger.token;
/** Shorthand for `Tokens.VmConfig.token`, for `@inject(...)`. */
export const VM_CONFIG = Tokens.VmConfig.token;
/** Shorthand for `Tokens.VirtioTransport.token`, for `@inject(...)`. */
export const VIRTIO_TRANSPORT = Tokens.VirtioTransport.token;
/** Shorthand for `Tokens.KernelCmdline.token`, for `@inject(...)`. */
export const KERNEL_CMDLINE = Tokens.KernelCmdline.token;
/** Shorthand for `Tokens.DiskFormat.token`, for `@inject(...)`. */
export const DISK_FORMAT = Tokens.DiskFormat.token;
/** Shorthand for `Tokens.Machine.token`, for `@inject(...)`. */
export const MACHINE = Tokens.Machine.token;
/** `@inject(PLUGIN_CONFIG)`: the instance's validated config. */
export const PLUGIN_CONFIG = PluginTokens.PluginConfig.token;
/** `@inject(PLUGIN_LOGGER)`: the VM's logger bound to the instance. */
export const PLUGIN_LOGGER = PluginTokens.PluginLogger.token;
/** `@inject(PLUGIN_INSTANCE)`: the instance name. */
export const PLUGIN_INSTANCE = PluginTokens.PluginInstance.token;
/** `@inject(PLUGIN_CONTEXT)`: the instance's PluginContext. */
export const PLUGIN_CONTEXT = PluginTokens.PluginContext.token;
