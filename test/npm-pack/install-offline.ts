import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXAMPLE, ROOT } from './pack.js';

/** npm's own CLI beside this Node (/usr/lib/node_modules/npm on Debian; the sandbox carries it there too). */
export function npmCli(): string {
  const cli = path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  if (!fs.existsSync(cli)) throw new Error(`npm not found at ${cli}`);
  return cli;
}

/** `npm pack` of the package in `dir` (already built: no scripts) into `dest`, offline; returns the tarball. */
export function packOffline(dir: string, dest: string): string {
  const r = spawnSync(
    process.execPath,
    [npmCli(), 'pack', '--ignore-scripts', '--offline', '--json', '--pack-destination', dest],
    {
      cwd: dir,
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_cache: path.join(dest, '.npm') },
    },
  );
  if (r.status !== 0) throw new Error(`npm pack in ${dir} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return path.join(dest, (JSON.parse(r.stdout) as { filename: string }[])[0]!.filename);
}

/**
 * A project with tsvmm and the example plugin installed from their `npm pack` tarballs, for a place with no
 * registry (the sandbox): each tarball is unpacked into node_modules/<name> as npm would, and tsvmm's
 * dependencies are linked from this checkout's node_modules (an offline install). Returns the project folder.
 */
export function offlineProject(dir: string): string {
  const nm = path.join(dir, 'node_modules');
  fs.mkdirSync(nm, { recursive: true });
  for (const [name, from] of [
    ['tsvmm', ROOT],
    ['tsvmm-virtio-rng', EXAMPLE],
  ] as const) {
    const tgz = packOffline(from, dir);
    const to = path.join(nm, name);
    fs.mkdirSync(to, { recursive: true });
    const r = spawnSync('tar', ['xzf', tgz, '-C', to, '--strip-components=1'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tar xzf ${tgz} failed: ${r.stderr}`);
  }
  const pj = JSON.parse(fs.readFileSync(path.join(nm, 'tsvmm', 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  const rng = JSON.parse(fs.readFileSync(path.join(nm, 'tsvmm-virtio-rng', 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  for (const dep of new Set([...Object.keys(pj.dependencies), ...Object.keys(rng.dependencies)])) {
    const link = path.join(nm, dep);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    if (!fs.existsSync(link)) fs.symlinkSync(path.join(ROOT, 'node_modules', dep), link, 'dir');
  }
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'vm-project', private: true, type: 'module' }, null, 2),
  );
  return dir;
}
