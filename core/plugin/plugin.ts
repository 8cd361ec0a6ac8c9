import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { z } from 'zod';
import type { Disposable } from '../bus/bus.js';
import type { Logger } from '../logger.js';
import type { VmConfig } from '../config/schema.js';
import type { VmLifecycle } from '../lifecycle.js';

/**
 * A plugin's manifest: `vmm-plugin.json` in its folder, or the `vmmPlugin` key of
 * an npm package's package.json. `entry` is a module (relative to the manifest)
 * whose default export (or named export `plugin`) is a `PluginModule`.
 */
export interface PluginManifest {
  name: string;
  version: string;
  description?: string;
  /** Token names (see core/tokens.ts, or any string for third-party tokens). */
  provides: string[];
  requires: string[];
  /** Optional requirements: ordered after their providers when present. */
  optional?: string[];
  /**
   * Tokens resolved only after every plugin registered (e.g. when the machine is built or
   * started): declared so manifest enforcement allows them, but they do not order plugins.
   */
  uses?: string[];
  entry: string;
  /**
   * Optional module (relative to the manifest, mapped to dist like `entry`) exporting
   * `registerCommands(program: Command)` to add CLI subcommands.
   */
  cli?: string;
  /**
   * The plugin hands guest RAM to another process (vhost-user back ends map it): the VM's RAM must live in
   * an fd that process can map. Planning picks `machine.memoryBackend: memfd` when the config leaves it
   * unset, and refuses `anonymous` written out with a one-line reason.
   */
  sharedMemory?: boolean;
}

/** What the kernel hands a plugin instance; also injectable as `PluginTokens.PluginContext`. */
export interface PluginContext<C = unknown> {
  /**
   * This plugin's validated config (its `configSchema` applied to the YAML `config:` block, defaults
   * filled): use it as is, never parse it again. Injectable as `PluginTokens.PluginConfig`.
   */
  readonly config: C;
  /** The whole VM configuration. */
  readonly vm: VmConfig;
  readonly logger: Logger;
  readonly lifecycle: VmLifecycle;
  /** Directory of the YAML file, for resolving relative paths in config. */
  readonly baseDir: string;
  /** Instance name when a plugin is listed several times (e.g. 'disk1'); defaults to the plugin name. */
  readonly instance: string;
  /**
   * Resolves `token` when some plugin (or the kernel) registered it, else undefined. Subject to
   * manifest enforcement like every resolve: declare the token in `optional` (or `requires`/`uses`).
   */
  optional<T>(token: InjectionToken<T>): T | undefined;
  /** Every provider of a `multiple` token (e.g. DiskFormat), [] when there is none. */
  all<T>(token: InjectionToken<T>): T[];
}

/**
 * A plugin's root object (`PluginModule.main`): built by constructor injection in the instance's
 * container once `register` (if any) ran; `attach` wires it into the VM and returns what undoes it.
 */
export interface PluginMain {
  attach(): Disposable[] | void | Promise<Disposable[] | void>;
}

/**
 * What a plugin's entry module exports (default export or `plugin`). Give `register`, `main`, or both.
 * See core/plugin/scope.ts for the container a plugin instance gets.
 */
export interface PluginModule<C = unknown> {
  /** Validates this plugin's `config:` block; unknown keys must be rejected (use z.strictObject). */
  configSchema?: z.ZodType<C>;
  /**
   * Registers classes (`@injectable()`, `@inject(Token)` on each constructor parameter), factories
   * or values in the instance's container. Registrations under the tokens the manifest `provides`
   * are visible to the whole VM; everything else stays private to this instance. Returns what
   * undoes it (undone in reverse order when the VM is torn down or a later plugin fails).
   */
  register?(container: DependencyContainer, ctx: PluginContext<C>): Disposable[] | void | Promise<Disposable[] | void>;
  /** The plugin's root class, built by constructor injection after `register`; see PluginMain. */
  main?: new (...args: never[]) => PluginMain;
  /**
   * Checks, before anything starts, whether this host can run the plugin with this config: one plain line
   * saying why not (and what to do instead), or undefined. `vmm run` prints it and exits unless --force
   * (the kvm plugin explains PVM and points at `--sandbox`).
   */
  hostCheck?(config: C): string | undefined;
  /**
   * The names under which this instance provides services of a `multiple` token, for other plugins' validate
   * (a virtio transport: `{ VirtioTransport: ['mmio'] }`).
   */
  names?(config: C): Readonly<Record<string, readonly string[]>>;
  /**
   * The files this config names that must exist before the VM starts (a disk image, a socket's folder is not one):
   * `vmm validate` and `vmm run` check each is there, a regular file (or a block device where allowed) and readable
   * (writable too when `write`), and point at its key in the YAML file when not.
   */
  files?(config: C): readonly PluginFile[];
  /**
   * Checks this config against the rest of the VM before anything starts (other plugins listed, the machine
   * section, what the host allows): one problem per entry, [] or undefined when fine. Runs for `vmm validate` and
   * before `vmm run`; everything a plugin would refuse at assembly for such reasons belongs here too.
   */
  validate?(config: C, vm: PlanContext): readonly PluginProblem[] | undefined;
}

/** A file a plugin's config names (PluginModule.files). */
export interface PluginFile {
  /** Where the config names it, inside the plugin's `config:` block (['path']). */
  readonly key: readonly (string | number)[];
  /** As written: relative to the YAML file's folder, absolute, or `<scheme>:<name>` served by the host. */
  readonly path: string;
  /** What it is, for messages ('disk image'). */
  readonly what: string;
  /** A block device is accepted too (raw disks). */
  readonly blockDevice?: boolean;
  /** The VM writes to it: it must be writable as well. */
  readonly write?: boolean;
}

/** A problem found by PluginModule.validate. */
export interface PluginProblem {
  /** Where, inside the plugin's `config:` block; with `vmKey` instead, a key of the whole VM config. */
  readonly key?: readonly (string | number)[];
  /** A key path of the whole VM config (['machine', 'vcpus']) when the problem is there. */
  readonly vmKey?: readonly (string | number)[];
  readonly message: string;
}

/** What PluginModule.validate sees of the planned VM. */
export interface PlanContext {
  /** The whole VM config (validated). */
  readonly vm: VmConfig;
  /** Folder of the YAML file. */
  readonly baseDir: string;
  /** This plugin instance's name. */
  readonly instance: string;
  /** The instances listed in the config that provide `token` (by manifest name, e.g. 'AcpiTables'). */
  providers(token: string): readonly string[];
  /**
   * The names the listed providers of `token` give their services (PluginModule.names), e.g. the virtio
   * transports' 'mmio', 'pci'; undefined when some provider does not say (nothing can be concluded then).
   */
  names(token: string): readonly string[] | undefined;
}
