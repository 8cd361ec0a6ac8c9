#!/usr/bin/env node
// The `vmm` command. Loads the compiled CLI from dist/ (or from the build folder named by
// VMM_DIST, relative to the repository root or absolute, e.g. VMM_DIST=.build/foundation).
// Where that build folder holds a fresh start-up bundle (<build>/bundle, hosts/bundle/README.md)
// `run` and `validate` load it instead: a handful of files instead of ~400 modules.
// VMM_BUNDLE=0 turns that off.
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as path from 'node:path';
import { setFlagsFromString } from 'node:v8';

// Memory (issue 18): V8 starts the young generation with 1 MiB semi-spaces and doubles them (up to 16 MiB) while
// many objects survive, as they do while a start loads its code; they then stay that size, resident, for the VMM's
// whole life although the running VMM allocates little (~6.5 MiB of a micro VM's overhead on the host). A growth
// factor of 1 keeps them at 1 MiB, for every isolate (the vCPU workers too); start-up CPU measured the same.
// First, before any other code loads: V8's code caches (<build>/bundle/vendor/*.v8cache) are valid only under the
// flags they were made with, and the build's warm-up (hosts/bundle/warm.ts) runs through this file too.
setFlagsFromString('--semi-space-growth-factor=1');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.resolve(root, process.env.VMM_DIST || 'dist');
let entry = path.join(dist, 'hosts', 'cli', 'run-main.js');
let select;
try {
  select = await import(pathToFileURL(path.join(dist, 'hosts', 'bundle', 'select.js')).href);
} catch { /* a build without hosts/bundle: the plain tree */ }
if (select) {
  const choice = select.chooseEntry(dist, root, process.argv.slice(2));
  if (process.env.VMM_DEBUG && choice.why?.startsWith('bundle not used')) process.stderr.write(`vmm: ${choice.why}\n`);
  entry = choice.entry;
}
await import(pathToFileURL(entry).href);
