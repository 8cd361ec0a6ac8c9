import type { VmPlan } from '../vmm/plan.js';

/**
 * What the listed plugins' host checks (PluginModule.hostCheck) say about this host, one line per plugin
 * that cannot run here, in plan order; empty when every plugin can run.
 */
export function hostProblems(plan: VmPlan): string[] {
  const out: string[] = [];
  for (const p of plan.plugins) {
    const problem = p.module.hostCheck?.(p.config);
    if (problem) out.push(problem);
  }
  return out;
}
