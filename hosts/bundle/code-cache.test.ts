import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedVendors } from './build.js';
import { cacheFileOf, cacheKey, decodeCache, encodeCache, readCache, writeCache } from './code-cache.js';
import type { VendorLoad } from './vendor-load.js';

const LOADER = fileURLToPath(new URL('./vendor-load.js', import.meta.url));

/** Loads `file` through vendor-load.js in a fresh process (its exit writes the cache); what it loaded and how. */
function loadInChild(file: string, env: NodeJS.ProcessEnv = {}): { load: VendorLoad; answer: unknown } {
  const script = `const m = await import(${JSON.stringify(LOADER)});
const e = m.loadVendorFile(${JSON.stringify(file)});
console.log(JSON.stringify({ load: m.vendorLoads()[0], answer: e.answer() }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, VMM_CODE_CACHE: '', ...env },
    encoding: 'utf8',
  });
  return JSON.parse(out) as { load: VendorLoad; answer: unknown };
}

describe('start-up bundle: vendor code cache', () => {
  let tmp: string, file: string;
  const source = (n: number) =>
    `'use strict';\nconst big = ${JSON.stringify('x'.repeat(n))};\nexports.answer = () => big.length + 42 - ${n};\n`;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-codecache-'));
    file = path.join(tmp, 'dep-0123456789ab.cjs');
    fs.writeFileSync(file, source(100));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('decodes what it encoded under the same key, and nothing under another key (stale)', () => {
    const data = Buffer.from('v8 cached data');
    const buf = encodeCache('k1', data);
    expect(decodeCache(buf, 'k1')?.equals(data)).to.equal(true);
    expect(decodeCache(buf, 'k2')).to.equal(undefined);
  });

  it('rejects a corrupt, truncated, empty or foreign file', () => {
    const buf = encodeCache('k', Buffer.from('payload bytes'));
    const flipped = Buffer.from(buf);
    flipped[flipped.length - 3] ^= 0xff;
    expect(decodeCache(flipped, 'k')).to.equal(undefined);
    expect(decodeCache(buf.subarray(0, buf.length - 20), 'k')).to.equal(undefined);
    expect(decodeCache(buf.subarray(0, 10), 'k')).to.equal(undefined);
    expect(decodeCache(Buffer.alloc(0), 'k')).to.equal(undefined);
    expect(decodeCache(encodeCache('k', Buffer.alloc(0)), 'k')).to.equal(undefined);
    const hugeKey = Buffer.from(buf);
    hugeKey.writeUInt32LE(0xffffffff, 8);
    expect(decodeCache(hugeKey, 'k')).to.equal(undefined);
    expect(decodeCache(Buffer.from('not a cache file at all'), 'k')).to.equal(undefined);
  });

  it('keys a cache by the script name, V8 version and architecture', () => {
    expect(cacheKey(file)).to.equal(`dep-0123456789ab.cjs|v8 ${process.versions.v8}|${process.arch}`);
    expect(cacheFileOf(file)).to.equal(`${file}.v8cache`);
  });

  it('reads nothing from a missing file and writes nothing where it cannot (no throw, no temp file left)', () => {
    expect(readCache(path.join(tmp, 'none.v8cache'), 'k')).to.equal(undefined);
    fs.writeFileSync(path.join(tmp, 'plain'), '');
    expect(writeCache(path.join(tmp, 'plain', 'x.v8cache'), 'k', Buffer.from('d'))).to.equal(false);
    const dirInTheWay = path.join(tmp, 'taken.v8cache');
    fs.mkdirSync(path.join(dirInTheWay, 'sub'), { recursive: true });
    expect(writeCache(dirInTheWay, 'k', Buffer.from('d'))).to.equal(false);
    expect(fs.readdirSync(tmp).sort()).to.deep.equal(['dep-0123456789ab.cjs', 'plain', 'taken.v8cache']);
  });

  it('writes the cache at exit when there was none, and the next process runs from it', () => {
    const first = loadInChild(file);
    expect(first).to.deep.equal({ load: { file, cacheUsed: false, toSave: true }, answer: 42 });
    expect(readCache(cacheFileOf(file), cacheKey(file))?.length).to.be.greaterThan(0);
    const second = loadInChild(file);
    expect(second).to.deep.equal({ load: { file, cacheUsed: true, toSave: false }, answer: 42 });
  });

  it('compiles from source and rewrites a corrupt cache', () => {
    loadInChild(file);
    const cf = cacheFileOf(file);
    const bytes = fs.readFileSync(cf);
    bytes[bytes.length - 7] ^= 0x55;
    fs.writeFileSync(cf, bytes);
    expect(loadInChild(file).load).to.deep.include({ cacheUsed: false, toSave: true });
    expect(loadInChild(file).load).to.deep.include({ cacheUsed: true });
  });

  it('compiles from source when V8 rejects a cache made for other source under the same name', () => {
    loadInChild(file);
    fs.writeFileSync(file, source(5000));
    const r = loadInChild(file, { VMM_DEBUG: '' });
    expect(r).to.deep.equal({ load: { file, cacheUsed: false, toSave: true }, answer: 42 });
    expect(loadInChild(file).load.cacheUsed).to.equal(true);
  });

  it('still loads when the cache cannot be written, and with VMM_CODE_CACHE=0 neither reads nor writes', () => {
    fs.mkdirSync(path.join(cacheFileOf(file), 'sub'), { recursive: true });
    expect(loadInChild(file).answer).to.equal(42);
    expect(fs.statSync(cacheFileOf(file)).isDirectory()).to.equal(true);
    fs.rmSync(cacheFileOf(file), { recursive: true });
    expect(loadInChild(file, { VMM_CODE_CACHE: '0' })).to.deep.equal({
      load: { file, cacheUsed: false, toSave: false },
      answer: 42,
    });
    expect(fs.existsSync(cacheFileOf(file))).to.equal(false);
    expect(fs.readdirSync(tmp)).to.deep.equal(['dep-0123456789ab.cjs']);
  });

  it("routes `import { z } from 'zod'` to loadVendor of the vendor script, re-exporting its names", () => {
    const hooks: { filter: RegExp; fn: (a: { path: string }) => unknown }[] = [];
    const hook = (o: { filter: RegExp }, fn: (a: { path: string }) => unknown) => void hooks.push({ ...o, fn });
    const files = new Map([
      ['zod', 'zod-0123456789ab.cjs'],
      ['tsyringe', 'tsyringe-0123456789ab.cjs'],
    ]);
    const lines = new Map([['zod', ['export default m.default;', 'const v0 = m["z"]; export { v0 as z };']]]);
    cachedVendors(files, lines, '/build/hosts/bundle/vendor-load.js').setup({ onResolve: hook, onLoad: hook });
    const [resolve, load] = hooks;
    expect(resolve.filter.test('zod')).to.equal(true);
    expect(resolve.filter.test('zod/v4')).to.equal(false);
    expect(resolve.filter.test('tsyringe/x')).to.equal(false);
    expect(resolve.fn({ path: 'zod' })).to.deep.equal({ path: 'zod', namespace: 'tsvmm-vendor' });
    expect(load.fn({ path: 'zod' })).to.deep.equal({
      contents: [
        'import { loadVendor } from "/build/hosts/bundle/vendor-load.js";',
        'const m = loadVendor("zod-0123456789ab.cjs");',
        'export default m.default;',
        'const v0 = m["z"]; export { v0 as z };',
      ].join('\n'),
      loader: 'js',
      resolveDir: '/build/hosts/bundle',
    });
    // tsyringe (SHARED_VENDORS): loaded as the instance require.cache holds for the package
    expect((load.fn({ path: 'tsyringe' }) as { contents: string }).contents).to.contain(
      'const m = loadVendor("tsyringe-0123456789ab.cjs", "tsyringe");',
    );
  });
});
