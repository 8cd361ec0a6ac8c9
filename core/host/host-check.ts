import type { VmPlan } from '../vmm/plan.js';
import { oneLine } from '../errors.js';

/**
 * What the listed plugins' host checks (PluginModule.hostCheck) say about this host, one line per plugin
 * that cannot run here (one line each, whatever the plugin wrote), in plan order; empty when every plugin can run.
 */
export function hostProblems(plan: VmPlan): string[] {
  const out: string[] = [];
  for (const p of plan.plugins) {
    const problem = p.module.hostCheck?.(p.config);
    if (problem) out.push(oneLine(problem).trim()); // printed as `vmm: <line>`: a plugin's text may span lines
  }
  return out;
}
