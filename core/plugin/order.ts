import type { DiscoveredPlugin } from './discovery.js';
import { PluginError } from './errors.js';

/** One listed plugin in a VM: the plugin plus its instance name and position in the YAML list. */
export interface PluginInstance {
  readonly instance: string;
  readonly plugin: DiscoveredPlugin;
  /** Index in the config's `plugins:` list. */
  readonly index: number;
}

/**
 * What ordering plugins needs beyond their manifests: the kernel's own tokens, each token's cardinality, and hints for
 * error messages.
 */
export interface OrderOptions {
  /** Tokens the kernel registers before any plugin (always present). */
  coreTokens: ReadonlySet<string>;
  /** 'singular' tokens may have one provider per VM. */
  cardinality(token: string): 'singular' | 'multiple';
  /** Extra help for a missing provider, e.g. which discovered plugins provide the token. */
  hint?(token: string): string | undefined;
  /**
   * Given: every problem is reported here (with the instance it is about) and ordering goes on, instead of
   * throwing the first (a second provider is left out of the ordering, a missing one ignored, a cycle broken
   * in YAML order).
   */
  onError?(err: PluginError, at: PluginInstance): void;
}

/**
 * Orders plugin instances so every provider registers before what requires it
 * (optional requirements order only when a provider is listed). Ties keep the YAML order.
 * Throws PluginError for a missing provider, two providers of a singular token, or a cycle.
 */
export function orderPlugins(instances: readonly PluginInstance[], opts: OrderOptions): PluginInstance[] {
  const providers = new Map<string, PluginInstance[]>();
  for (const inst of instances) {
    for (const t of new Set(inst.plugin.manifest.provides)) {
      const list = providers.get(t) ?? [];
      if (list.length > 0 && opts.cardinality(t) === 'singular') {
        const err = new PluginError(
          'DuplicateProvider',
          `plugins '${list[0].instance}' and '${inst.instance}' both provide '${t}', which a VM may have only one of; remove one`,
          { token: t, plugins: [list[0].instance, inst.instance] },
        );
        if (!opts.onError) throw err;
        opts.onError(err, inst);
        continue;
      }
      list.push(inst);
      providers.set(t, list);
    }
  }
  // Edges: provider -> dependant.
  const deps = new Map<PluginInstance, Map<PluginInstance, string>>(instances.map((i) => [i, new Map()]));
  for (const inst of instances) {
    const m = inst.plugin.manifest;
    for (const [t, required] of [
      ...m.requires.map((t) => [t, true] as const),
      ...(m.optional ?? []).map((t) => [t, false] as const),
    ]) {
      const ps = (providers.get(t) ?? []).filter((p) => p !== inst);
      if (ps.length === 0 && required && !opts.coreTokens.has(t) && !providers.has(t)) {
        const hint = opts.hint?.(t);
        const err = new PluginError(
          'MissingProvider',
          `plugin '${inst.instance}' requires '${t}', but no listed plugin provides it${hint ? ` (${hint})` : ''}`,
          { plugin: inst.instance, token: t },
        );
        if (!opts.onError) throw err;
        opts.onError(err, inst);
      }
      for (const p of ps) if (!deps.get(inst)!.has(p)) deps.get(inst)!.set(p, t);
    }
  }
  // Kahn's algorithm, always taking the earliest-listed ready instance.
  const out: PluginInstance[] = [];
  const remaining = new Set(instances);
  while (remaining.size > 0) {
    const next = [...remaining]
      .sort((a, b) => a.index - b.index)
      .find((i) => [...deps.get(i)!.keys()].every((d) => !remaining.has(d)));
    if (!next) {
      const err = cycleError(remaining, deps);
      if (!opts.onError) throw err;
      const rest = [...remaining].sort((a, b) => a.index - b.index);
      opts.onError(err, rest[0]);
      return [...out, ...rest];
    }
    remaining.delete(next);
    out.push(next);
  }
  return out;
}

function cycleError(
  remaining: Set<PluginInstance>,
  deps: Map<PluginInstance, Map<PluginInstance, string>>,
): PluginError {
  // Walk dependencies inside the remaining set until a node repeats.
  const start = [...remaining].sort((a, b) => a.index - b.index)[0];
  const pathNodes: PluginInstance[] = [];
  const tokens: string[] = [];
  let cur = start;
  while (!pathNodes.includes(cur)) {
    pathNodes.push(cur);
    const [nextNode, token] = [...deps.get(cur)!.entries()].find(([d]) => remaining.has(d))!;
    tokens.push(token);
    cur = nextNode;
  }
  const from = pathNodes.indexOf(cur);
  const cyc = pathNodes.slice(from);
  const toks = tokens.slice(from);
  // deps point from dependant to provider: "a needs X from b".
  const desc = cyc
    .map((p, i) => `'${p.instance}' needs '${toks[i]}' from '${cyc[(i + 1) % cyc.length].instance}'`)
    .join(', ');
  return new PluginError(
    'Cycle',
    `plugin dependency cycle: ${[...cyc, cyc[0]].map((p) => p.instance).join(' -> ')} (${desc})`,
    { cycle: cyc.map((p) => p.instance) },
  );
}
