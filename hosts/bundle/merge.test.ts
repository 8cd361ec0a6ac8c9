import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';
import { alsoImport, staticInputs } from './build.js';
import { CLI_ENTRY } from './select.js';

/** The bundle files a process that runs `entry` loads before anything else: `entry` and its static imports. */
function staticFiles(entry: string): Set<string> {
  const seen = new Set([entry]);
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop()!;
    const src = fs.readFileSync(file, 'utf8');
    // minified esbuild output: `import{a}from"./x.js"`, `import"./y.js"`; dynamic import("...") has a parenthesis
    for (const m of src.matchAll(/(?:^|[;}\n])\s*(?:import|export)\s*(?:[\w*{}\s,$]*?from\s*)?"(\.[^"]+)"/g)) {
      const dep = path.resolve(path.dirname(file), m[1]);
      if (!seen.has(dep)) {
        seen.add(dep);
        todo.push(dep);
      }
    }
  }
  return seen;
}

describe('start-up bundle: what the CLI loads shares one chunk', () => {
  const dist = '/b/dist';
  const abs = (p: string) => path.resolve('/b', p);
  const meta = {
    inputs: {},
    outputs: {
      'dist/bundle/hosts/cli/run-main.js': {
        entryPoint: 'dist/hosts/cli/run-main.js',
        inputs: { 'dist/hosts/cli/run-main.js': {}, 'dist/hosts/cli/args.js': {} },
        imports: [
          { path: 'dist/bundle/core/chunks/a.js', kind: 'import-statement' },
          { path: 'dist/bundle/core/chunks/lazy.js', kind: 'dynamic-import' },
          { path: 'node:fs', kind: 'import-statement' },
        ],
      },
      'dist/bundle/core/chunks/a.js': {
        inputs: { 'dist/core/x.js': {}, 'tsvmm-vendor:zod': {}, 'node_modules/p/i.js': {} },
        imports: [{ path: 'dist/bundle/core/chunks/b.js', kind: 'import-statement' }],
      },
      'dist/bundle/core/chunks/b.js': { inputs: { 'dist/core/y.js': {} }, imports: [] },
      'dist/bundle/core/chunks/lazy.js': { inputs: { 'dist/hosts/sandbox/s.js': {} }, imports: [] },
      'dist/bundle/plugins/x86/plugin.js': {
        entryPoint: 'dist/plugins/x86/plugin.js',
        inputs: { 'dist/plugins/x86/plugin.js': {} },
        imports: [{ path: 'dist/bundle/core/chunks/b.js', kind: 'import-statement' }],
      },
    },
  };

  it("staticInputs: the compiled files of the entry's output and the chunks it imports statically, transitively", () => {
    expect(staticInputs(meta, '/b/dist/hosts/cli/run-main.js', dist, abs)).to.deep.equal([
      '/b/dist/core/x.js',
      '/b/dist/core/y.js',
      '/b/dist/hosts/cli/args.js',
    ]);
    expect(() => staticInputs(meta, '/b/dist/none.js', dist, abs)).to.throw(/no bundle output for the entry/);
  });

  it('alsoImport: each entry (and nothing else) imports the shared files after its own code', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-merge-'));
    try {
      const entry = path.join(tmp, 'plugin.js');
      fs.writeFileSync(entry, 'import { a } from "./a.js";\nexport const b = a;\n');
      const hooks: { filter: RegExp; fn: (a: { path: string }) => unknown }[] = [];
      const hook = (o: { filter: RegExp }, fn: (a: { path: string }) => unknown) => void hooks.push({ ...o, fn });
      alsoImport([entry], ['/b/dist/core/x.js', '/b/dist/core/y.js']).setup({ onResolve: hook, onLoad: hook });
      expect(hooks).to.have.length(1);
      expect(hooks[0].filter.test(entry)).to.equal(true);
      expect(hooks[0].filter.test(path.join(tmp, 'a.js'))).to.equal(false);
      expect(hooks[0].filter.test(`${entry}x`)).to.equal(false);
      expect(hooks[0].fn({ path: entry })).to.deep.equal({
        contents:
          'import { a } from "./a.js";\nexport const b = a;\n\nimport "/b/dist/core/x.js";\nimport "/b/dist/core/y.js";\n',
        loader: 'js',
        resolveDir: tmp,
      });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('this build: `vmm run` loads its CLI from a few files, not one chunk per combination of plugins', () => {
    const { distDir } = buildLocations();
    const files = staticFiles(path.join(distDir, 'bundle', CLI_ENTRY));
    // one-pass splitting gave 22 here; merged: the entry, the CLI's chunk and a few shared with dynamic imports
    expect(files.size, [...files].join('\n')).to.be.at.most(8);
  });
});
