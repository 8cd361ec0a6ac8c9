import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { manifestTokenName, PluginTokens } from '../tokens.js';
import { PluginError } from './errors.js';
import type { PluginManifest } from './plugin.js';

/** How a plugin instance's container behaves; see createPluginScope. */
export interface PluginScopeOptions {
  /** Instance name, for error messages (e.g. 'disk1'). */
  readonly instance: string;
  /**
   * The manifest whose `provides` are published to the VM and whose declared tokens
   * (provides, requires, optional, uses) may be resolved; undefined: the kernel's own scope
   * (publishes every framework token, checks nothing).
   */
  readonly manifest?: PluginManifest;
  /** Where the manifest lives, named in enforcement errors. */
  readonly manifestPath?: string;
  /** Fail on a resolve/inject/register of a framework token the manifest does not declare. */
  readonly enforce: boolean;
}

const INSTANCE_TOKENS: ReadonlySet<string> = new Set(Object.keys(PluginTokens));

type Register = DependencyContainer['register'];

/** A plugin instance's container plus the lookups PluginContext offers over it. */
export interface PluginScope {
  readonly container: DependencyContainer;
  /** The token's provider when registered, else undefined (checked against the manifest). */
  optional<T>(token: InjectionToken<T>): T | undefined;
  /** Every provider of the token, [] when none (checked against the manifest). */
  all<T>(token: InjectionToken<T>): T[];
}

/**
 * The container of one plugin instance: a child of the VM container.
 *
 * - Per-instance values (PluginTokens: config, logger, instance name, context) are registered in
 *   it by the kernel, so the instance's classes inject their own (virtio-blk disk1 and disk2 each
 *   get theirs).
 * - A registration under a framework token (`Symbol.for('tsvmm.<Name>')`) is *published*: the
 *   provider is kept here under a private alias and the VM container gets a factory that resolves
 *   it here. Its class is therefore always constructed in this container (its constructor's
 *   injections see this instance's values and are checked against this manifest), with the
 *   lifecycle the plugin gave (transient by default; `Lifecycle.ContainerScoped` for one per VM).
 *   The token itself is not registered here, so a later registration in the VM container (a test
 *   swapping a backend) is what this instance sees too.
 * - Registrations under any other token (a class, a local symbol) stay private to the instance.
 * - With `enforce`, resolving or injecting (tsyringe resolves constructor parameters through the
 *   same `resolve`/`resolveAll` of this container) a framework token the manifest does not
 *   declare, or registering one it does not provide, throws PluginError 'Undeclared' naming the
 *   plugin and the token.
 */
export function createPluginScope(vm: DependencyContainer, opts: PluginScopeOptions): PluginScope {
  const scope = vm.createChildContainer();
  const m = opts.manifest;
  const declared = new Set([
    ...INSTANCE_TOKENS,
    ...(m?.provides ?? []),
    ...(m?.requires ?? []),
    ...(m?.optional ?? []),
    ...(m?.uses ?? []),
  ]);
  const where = opts.manifestPath ? ` in ${opts.manifestPath}` : '';
  const check = (token: unknown, verb: string, list: string): void => {
    const name = manifestTokenName(token);
    if (!opts.enforce || m === undefined || name === undefined) return;
    if (verb === 'registers' ? m.provides.includes(name) || INSTANCE_TOKENS.has(name) : declared.has(name)) return;
    throw new PluginError(
      'Undeclared',
      `plugin '${opts.instance}' ${verb} token '${name}', which its manifest does not declare (add it to ${list}${where})`,
      { plugin: opts.instance, token: name },
    );
  };
  const uses = 'requires, optional or uses';

  const resolve = scope.resolve.bind(scope) as (t: unknown, ...rest: unknown[]) => unknown;
  const resolveAll = scope.resolveAll.bind(scope) as (t: unknown, ...rest: unknown[]) => unknown[];
  const register = scope.register.bind(scope) as Register;
  Object.assign(scope, {
    resolve: (token: unknown, ...rest: unknown[]) => {
      check(token, 'resolves', uses);
      return resolve(token, ...rest);
    },
    resolveAll: (token: unknown, ...rest: unknown[]) => {
      check(token, 'resolves', uses);
      return resolveAll(token, ...rest);
    },
    register: ((token: InjectionToken<unknown>, provider: never, options?: never) => {
      const name = manifestTokenName(token);
      if (name === undefined || INSTANCE_TOKENS.has(name)) return register(token, provider, options);
      check(token, 'registers', 'provides');
      const alias = Symbol(`${opts.instance}:${name}`);
      register(alias, provider, options);
      vm.register(token, { useFactory: () => scope.resolve(alias) });
      return scope;
    }) as Register,
  });
  return {
    container: scope,
    optional: <T>(token: InjectionToken<T>): T | undefined => {
      check(token, 'resolves', uses);
      return scope.isRegistered(token, true) ? scope.resolve(token) : undefined;
    },
    all: <T>(token: InjectionToken<T>): T[] => {
      check(token, 'resolves', uses);
      return scope.isRegistered(token, true) ? scope.resolveAll(token) : [];
    },
  };
}
