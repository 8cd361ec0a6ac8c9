/** Running a host tool to its end for the sandbox's set-up code (apt-get, dpkg, ldd, readelf), with its limits. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';

/** Runs `cmd args` in `cwd` and waits (10 minutes at most, 64 MiB of output), text output. */
export function runTool(cmd: string, args: string[], cwd?: string): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20 });
}
