/**
 * `node <build>/hosts/bundle/cli.js [--out DIR]`: builds the start-up bundle of the build folder
 * this file was compiled into (see build.ts). Prints what it wrote; exit 1 on failure.
 */
import { buildLocations } from '../../core/plugin/locations.js';
import { buildBundle, loadEsbuild } from './build.js';
import { warmCodeCache } from './warm.js';

const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
try {
  const { distDir, repoRoot } = buildLocations();
  const t0 = performance.now();
  const r = await buildBundle({
    distDir,
    repoRoot,
    esbuild: await loadEsbuild(),
    outDir: outAt >= 0 ? args[outAt + 1] : undefined,
  });
  process.stdout.write(
    `bundle: ${r.outDir}: ${r.entries.length} entries, ${r.outputs.length} files, ${(r.bytes / 1024).toFixed(0)} KiB in ${(performance.now() - t0).toFixed(0)} ms\n`,
  );
  if (outAt < 0) {
    const w = warmCodeCache(distDir, repoRoot);
    process.stdout.write(`bundle: code cache: ${w}\n`);
  }
} catch (err) {
  process.stderr.write(`bundle: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
