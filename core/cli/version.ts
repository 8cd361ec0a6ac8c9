import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildLocations } from '../plugin/locations.js';

/** This installation's version, from the package.json at the repository (or package) root. */
export function vmmVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(buildLocations().repoRoot, 'package.json'), 'utf8')) as {
      name?: string;
      version?: string;
    };
    return `${pkg.name ?? 'tsvmm'} ${pkg.version ?? 'unknown'} (node ${process.versions.node})`;
  } catch {
    return `tsvmm unknown (node ${process.versions.node})`;
  }
}
