import type { DependencyContainer } from 'tsyringe';
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
  entry: string;
  /** Optional module (relative to the manifest, mapped to dist like `entry`) exporting `registerCommands(program: Command)` to add CLI subcommands. */
  cli?: string;
}

export interface PluginContext<C = unknown> {
  /** This plugin's validated config (its `configSchema` applied to the YAML `config:` block). */
  readonly config: C;
  /** The whole VM configuration. */
  readonly vm: VmConfig;
  readonly logger: Logger;
  readonly lifecycle: VmLifecycle;
  /** Directory of the YAML file, for resolving relative paths in config. */
  readonly baseDir: string;
  /** Instance name when a plugin is listed several times (e.g. 'disk1'); defaults to the plugin name. */
  readonly instance: string;
}

export interface PluginModule<C = unknown> {
  /** Validates this plugin's `config:` block; unknown keys must be rejected (use z.strictObject). */
  configSchema?: z.ZodType<C>;
  /**
   * Registers providers into the VM's child container. May resolve tokens this
   * plugin requires (their providers registered earlier). Returns what undoes it.
   */
  register(container: DependencyContainer, ctx: PluginContext<C>): Disposable[] | void | Promise<Disposable[] | void>;
}
