/**
 * Whether plugin manifests are enforced (see createPluginScope): under mocha, with
 * NODE_ENV=test, or with VMM_DEBUG set (not '0'). Production runs skip the checks.
 */
export function manifestsEnforced(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NODE_ENV === 'test') return true;
  if (env.VMM_DEBUG !== undefined && env.VMM_DEBUG !== '' && env.VMM_DEBUG !== '0') return true;
  // mocha defines its BDD globals before it loads the test files
  const g = globalThis as { describe?: unknown; it?: unknown };
  return typeof g.describe === 'function' && typeof g.it === 'function';
}
