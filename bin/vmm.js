#!/usr/bin/env node
// The `vmm` command. Loads the compiled CLI from dist/ (or from the build folder named by
// VMM_DIST, relative to the repository root or absolute, e.g. VMM_DIST=.build/foundation).
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.resolve(root, process.env.VMM_DIST || 'dist');
await import(pathToFileURL(path.join(dist, 'core', 'cli', 'run-main.js')).href);
