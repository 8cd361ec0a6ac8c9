#!/usr/bin/env node
// The `vmm` command. Loads the compiled CLI from dist/ (or from the build folder named by
// VMM_DIST, relative to the repository root or absolute, e.g. VMM_DIST=.build/foundation).
// Where that build folder holds a fresh start-up bundle (<build>/bundle, hosts/bundle/README.md)
// `run` and `validate` load it instead: a handful of files instead of ~400 modules.
// VMM_BUNDLE=0 turns that off.
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as path from 'node:path';

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
