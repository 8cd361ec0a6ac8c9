/**
 * The build's warm-up: one `vmm validate hosts/micro.yaml` through the fresh bundle, whose exit writes the vendor
 * scripts' code cache (vendor-load.ts) with the functions a start compiles, so the first `vmm run` (and every run in
 * the sandbox, which gets a copy of the build) already has it. Never fails the build: no cache only means a slower
 * first start.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUNDLE_DIR } from './select.js';
import { VENDOR_DIR } from './vendor-load.js';
import { cacheFileOf } from './code-cache.js';

/** Runs the warm-up for the bundle of `distDir`; returns a line saying which caches exist afterwards. */
export function warmCodeCache(distDir: string, repoRoot: string): string {
  const dir = path.join(distDir, BUNDLE_DIR, VENDOR_DIR);
  const env: NodeJS.ProcessEnv = { ...process.env, VMM_DIST: distDir };
  delete env.VMM_CODE_CACHE;
  delete env.VMM_BUNDLE;
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'vmm.js'), 'validate', 'hosts/micro.yaml'], {
    cwd: repoRoot,
    env,
    stdio: 'ignore',
    timeout: 60_000,
  });
  let scripts: string[] = [];
  try {
    scripts = fs.readdirSync(dir).filter((f) => f.endsWith('.cjs'));
  } catch {
    /* no vendor folder */
  }
  const have = scripts.filter((f) => fs.existsSync(cacheFileOf(path.join(dir, f))));
  return `${have.length} of ${scripts.length} vendor scripts cached (warm-up exit ${r.status ?? r.signal ?? r.error})`;
}
