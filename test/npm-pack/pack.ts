import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';

/** The repository root and the out-of-tree example package in it. */
export const ROOT = buildLocations().repoRoot;
/** The example plugin package (examples/virtio-rng). */
export const EXAMPLE = path.join(ROOT, 'examples', 'virtio-rng');

/** Runs a command; throws with its output when it fails. Returns stdout. */
export function sh(cmd: string, args: string[], cwd: string, timeoutMs = 240_000): string {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, npm_config_update_notifier: 'false', VMM_BUNDLE: process.env.VMM_BUNDLE },
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed (${r.status ?? r.signal}): ${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Offline-first npm flags: packages come from the npm cache that `npm ci` filled, no audit, no scripts. */
const NPM_QUIET = ['--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'];

/**
 * `npm pack` of tsvmm as built (dist/ is what this test runs from, so no prepack build) into `dest`;
 * returns the tarball's path.
 */
export function packTsvmm(dest: string): string {
  const out = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], ROOT);
  const [info] = JSON.parse(out) as { filename: string }[];
  return path.join(dest, info.filename);
}

/**
 * A copy of the example package in `dir` whose tsvmm dependency is the tarball `tgz` (as a plugin
 * author's `npm i -D tsvmm-0.1.0.tgz` would write it), installed.
 */
export function installExample(dir: string, tgz: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['package.json', 'tsconfig.json', 'src', 'test', 'README.md'])
    fs.cpSync(path.join(EXAMPLE, f), path.join(dir, f), { recursive: true });
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  pj.devDependencies.tsvmm = `file:${tgz}`;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pj, null, 2));
  sh('npm', ['install', ...NPM_QUIET], dir);
}

/** A project that installs the given tarballs (by package name) as its dependencies, as a VM's owner would. */
export function installProject(dir: string, deps: Record<string, string>): void {
  fs.mkdirSync(dir, { recursive: true });
  const dependencies = Object.fromEntries(Object.entries(deps).map(([n, t]) => [n, `file:${t}`]));
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'vm-project', private: true, type: 'module', dependencies }, null, 2),
  );
  sh('npm', ['install', ...NPM_QUIET], dir);
}
