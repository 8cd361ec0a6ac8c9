import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { Disposable } from '../bus/bus.js';
import { PluginTokens } from '../tokens.js';
import type { PluginContext, PluginMain, PluginManifest, PluginModule } from './plugin.js';
import { createPluginScope } from './scope.js';

/** A PluginContext without the lookups, which registerPluginInstance adds over the instance's scope. */
export type PluginInstanceInfo<C = unknown> = Omit<PluginContext<C>, 'optional' | 'all'>;

/** Manifest checks for registerPluginInstance. */
export interface PluginInstanceOptions {
  /** The plugin's manifest; without one every framework token is published and nothing is checked. */
  readonly manifest?: PluginManifest;
  readonly manifestPath?: string;
  /** Check resolves, injections and registrations against the manifest (default false). */
  readonly enforce?: boolean;
}

/**
 * Registers one plugin instance the way the kernel does (assembleVm; tests call it directly): a
 * scope under `vm` (core/plugin/scope.ts) holding the instance's PluginTokens, then the module's
 * `register`, then its `main` class built by constructor injection and attached. Returns what
 * undoes it all (dispose in reverse order); when a step throws, what was done is undone first.
 */
export async function registerPluginInstance<C>(
  vm: DependencyContainer,
  module: PluginModule<C>,
  info: PluginInstanceInfo<C>,
  opts: PluginInstanceOptions = {},
): Promise<Disposable[]> {
  const scope = createPluginScope(vm, {
    instance: info.instance,
    manifest: opts.manifest,
    manifestPath: opts.manifestPath,
    enforce: opts.enforce ?? false,
  });
  const ctx: PluginContext<C> = { ...info, optional: scope.optional, all: scope.all };
  const c = scope.container;
  c.register(PluginTokens.PluginConfig.token, { useValue: info.config });
  c.register(PluginTokens.PluginLogger.token, { useValue: info.logger });
  c.register(PluginTokens.PluginInstance.token, { useValue: info.instance });
  c.register(PluginTokens.PluginContext.token, { useValue: ctx });
  const disposables: Disposable[] = [];
  try {
    const out = await module.register?.(c, ctx);
    if (Array.isArray(out)) disposables.push(...out);
    if (module.main) {
      const attached = await c.resolve(module.main as unknown as InjectionToken<PluginMain>).attach();
      if (Array.isArray(attached)) disposables.push(...attached);
    }
  } catch (err) {
    for (const d of disposables.reverse()) await Promise.resolve(d.dispose()).catch(() => {});
    throw err;
  }
  return disposables;
}

/**
 * A full PluginContext over a plain container, without a scope or manifest checks: for tests that
 * call a plugin's register function directly (registerPluginInstance is closer to the kernel).
 */
export function pluginContext<C>(container: DependencyContainer, info: PluginInstanceInfo<C>): PluginContext<C> {
  return {
    ...info,
    optional: <T>(token: InjectionToken<T>): T | undefined =>
      container.isRegistered(token, true) ? container.resolve(token) : undefined,
    all: <T>(token: InjectionToken<T>): T[] => (container.isRegistered(token, true) ? container.resolveAll(token) : []),
  };
}
