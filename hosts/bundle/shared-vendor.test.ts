import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildLocations } from '../../core/plugin/locations.js';
import { SHARED_VENDORS } from './build.js';
import { VENDOR_DIR } from './vendor-load.js';

const LOADER = fileURLToPath(new URL('./vendor-load.js', import.meta.url));

/** Runs an ES module script in a fresh process (cwd `cwd`) with `LOADER` bound to vendor-load.js; its JSON output. */
function child(script: string, cwd: string): Record<string, unknown> {
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', `const LOADER = ${JSON.stringify(LOADER)};\n${script}`],
    { cwd, env: { ...process.env, VMM_CODE_CACHE: '0' }, encoding: 'utf8' },
  );
  return JSON.parse(out) as Record<string, unknown>;
}

describe('start-up bundle: a shared vendor script is the instance require() and import() give plugins', () => {
  let tmp: string, real: string, vendor: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-shared-vendor-'));
    const pkg = path.join(tmp, 'node_modules', 'sharedpkg');
    fs.mkdirSync(path.join(pkg, 'lib'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), '{"name":"sharedpkg","main":"lib/index.js"}');
    real = path.join(pkg, 'lib', 'index.js');
    // the package's own entry marks itself: a process that runs it instead of the vendor script shows it
    fs.writeFileSync(real, "'use strict';\nexports.registry = new Map(); exports.from = 'package';\n");
    vendor = path.join(tmp, 'sharedpkg-0123456789ab.cjs');
    fs.writeFileSync(vendor, "'use strict';\nexports.registry = new Map(); exports.from = 'vendor';\n");
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('puts its module in require.cache at the real entry: require and import share it', () => {
    const r = child(
      `import { createRequire } from 'node:module';
const m = await import(LOADER);
const v = m.loadVendorFile(${JSON.stringify(vendor)}, process.env, ${JSON.stringify(real)});
v.registry.set('k', 1);
const req = createRequire(${JSON.stringify(path.join(tmp, 'plugin.js'))})('sharedpkg');
const esm = await import('sharedpkg');
console.log(JSON.stringify({ from: v.from, required: req === v, imported: esm.default === v,
  named: esm.registry === v.registry, again: m.loadVendorFile(${JSON.stringify(vendor)}) === v }));`,
      tmp,
    );
    expect(r).to.deep.equal({ from: 'vendor', required: true, imported: true, named: true, again: true });
  });

  it('returns the instance already loaded at the real entry and does not run the script', () => {
    const r = child(
      `import { createRequire } from 'node:module';
const first = createRequire(${JSON.stringify(path.join(tmp, 'plugin.js'))})('sharedpkg');
const m = await import(LOADER);
const v = m.loadVendorFile(${JSON.stringify(vendor)}, process.env, ${JSON.stringify(real)});
console.log(JSON.stringify({ from: v.from, same: v === first, loads: m.vendorLoads().length }));`,
      tmp,
    );
    expect(r).to.deep.equal({ from: 'package', same: true, loads: 0 });
  });

  it('a script that throws leaves no half-loaded module in require.cache', () => {
    fs.writeFileSync(vendor, "'use strict';\nthrow new Error('broken vendor');\n");
    const r = child(
      `import { createRequire } from 'node:module';
const m = await import(LOADER);
let msg = '';
try { m.loadVendorFile(${JSON.stringify(vendor)}, process.env, ${JSON.stringify(real)}); } catch (e) { msg = e.message; }
const req = createRequire(${JSON.stringify(path.join(tmp, 'plugin.js'))})('sharedpkg');
console.log(JSON.stringify({ msg, from: req.from }));`,
      tmp,
    );
    expect(r).to.deep.equal({ msg: 'broken vendor', from: 'package' });
  });

  it("this build: tsyringe's vendor script is the container a plugin importing tsyringe registers with", () => {
    const loc = buildLocations();
    const dir = path.join(loc.distDir, 'bundle', VENDOR_DIR);
    const file = fs.readdirSync(dir).find((f) => /^tsyringe-[0-9a-f]{12}\.cjs$/.test(f));
    expect(file, `a tsyringe vendor script in ${dir} (npm run build)`).to.be.a('string');
    expect(SHARED_VENDORS).to.include('tsyringe');
    const r = child(
      `import 'reflect-metadata';
import { createRequire } from 'node:module';
const m = await import(LOADER);
const real = createRequire(LOADER).resolve('tsyringe');
const v = m.loadVendorFile(${JSON.stringify(path.join(dir, file!))}, process.env, real);
const plugin = await import('tsyringe'); // what a third-party plugin's \`import { injectable } from 'tsyringe'\` gets
class Dev { constructor() { this.n = 7; } }
plugin.injectable()(Dev);
const child = v.container.createChildContainer();
console.log(JSON.stringify({ container: plugin.container === v.container,
  resolved: child.resolve(Dev).n, required: createRequire(LOADER)('tsyringe') === v }));`,
      loc.repoRoot,
    );
    expect(r).to.deep.equal({ container: true, resolved: 7, required: true });
  });
});
