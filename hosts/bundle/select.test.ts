import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';
import { bundleEntries, REQUIRED_EXTERNALS, requireExternals, SHARED_VENDORS } from './build.js';
import { chooseEntry, commandOf } from './select.js';
import { fileSig, repoManifests, staleReason, STAMP_FILE, STAMP_VERSION, type BundleStamp } from './stamp.js';

describe('start-up bundle: stamp and entry choice', () => {
  let tmp: string, repo: string, dist: string, bundle: string;
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  };
  const stampNow = (): void => {
    const stamp: BundleStamp = {
      version: STAMP_VERSION,
      inputs: { 'core/a.js': fileSig(path.join(dist, 'core', 'a.js'))! },
      manifests: repoManifests(repo),
      outputs: ['hosts/cli/run-main.js'],
    };
    write(path.join(bundle, STAMP_FILE), JSON.stringify(stamp));
  };
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-bundle-'));
    repo = path.join(tmp, 'repo');
    dist = path.join(repo, 'dist');
    bundle = path.join(dist, 'bundle');
    write(path.join(repo, 'package.json'), '{}');
    write(path.join(repo, 'plugins', 'one', 'vmm-plugin.json'), '{"name":"one","entry":"./plugin.js"}');
    write(path.join(dist, 'core', 'a.js'), 'export const a = 1;');
    write(path.join(dist, 'plugins', 'one', 'plugin.js'), 'export default {};');
    write(path.join(bundle, 'hosts', 'cli', 'run-main.js'), '');
    stampNow();
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  let bundled: string, plain: string;
  beforeEach(() => {
    bundled = path.join(dist, 'bundle', 'hosts', 'cli', 'run-main.js');
    plain = path.join(dist, 'hosts', 'cli', 'run-main.js');
  });

  it('a fresh bundle serves run, validate, serve and --version; other commands, --sandbox and VMM_BUNDLE=0 use the plain tree', () => {
    expect(staleReason(bundle, repo)).to.equal(undefined);
    expect(chooseEntry(dist, repo, ['run', 'vm.yaml'], {})).to.deep.equal({ entry: bundled, bundled: true });
    expect(chooseEntry(dist, repo, ['--force', 'run', 'vm.yaml'], {}).entry).to.equal(bundled);
    expect(chooseEntry(dist, repo, ['validate', 'vm.yaml'], {}).entry).to.equal(bundled);
    expect(chooseEntry(dist, repo, ['serve', '--api-socket', 's'], {}).entry).to.equal(bundled);
    // the migration plugin's commands whose start-up is a bench row (restore to a running vCPU, migration downtime)
    for (const args of [
      ['restore', 'snap'],
      ['receive', 'tcp:0:4444'],
      ['migrate', 'vm.sock', 'tcp:h:4444'],
    ])
      expect(chooseEntry(dist, repo, args, {}).entry, args.join(' ')).to.equal(bundled);
    expect(chooseEntry(dist, repo, ['--version'], {}).entry).to.equal(bundled);
    expect(chooseEntry(dist, repo, ['-V'], {}).entry).to.equal(bundled);
    for (const args of [['plugins'], ['image', 'info', 'x'], [], ['--help'], ['run', '--sandbox', 'vm.yaml']]) {
      expect(chooseEntry(dist, repo, args, {}).entry, args.join(' ')).to.equal(plain);
    }
    expect(chooseEntry(dist, repo, ['run', 'vm.yaml'], { VMM_BUNDLE: '0' }).entry).to.equal(plain);
    expect(commandOf(['-x', 'validate', 'y'])).to.equal('validate');
  });

  it('is stale once a compiled input changes, a manifest appears, changes or goes, or an output is missing', () => {
    write(path.join(dist, 'core', 'a.js'), 'export const a = 22;');
    expect(staleReason(bundle, repo)).to.match(/core\/a\.js changed/);
    expect(chooseEntry(dist, repo, ['run', 'vm.yaml'], {}).entry).to.equal(plain);
    stampNow();
    write(path.join(repo, 'plugins', 'two', 'vmm-plugin.json'), '{}');
    expect(staleReason(bundle, repo)).to.match(/plugins\/two\/vmm-plugin\.json is new/);
    stampNow();
    write(path.join(repo, 'plugins', 'one', 'vmm-plugin.json'), '{"name":"one","entry":"./other.js"}');
    expect(staleReason(bundle, repo)).to.match(/plugins\/one\/vmm-plugin\.json changed/);
    stampNow();
    fs.rmSync(path.join(repo, 'plugins', 'two'), { recursive: true });
    expect(staleReason(bundle, repo)).to.match(/plugins\/two\/vmm-plugin\.json is gone/);
    stampNow();
    fs.rmSync(path.join(bundle, 'hosts', 'cli', 'run-main.js'));
    expect(staleReason(bundle, repo)).to.match(/run-main\.js is missing/);
  });

  it('a copy with new mtimes but the same content (the sandbox stages files so) is still fresh', () => {
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(dist, 'core', 'a.js'), later, later);
    fs.utimesSync(path.join(repo, 'plugins', 'one', 'vmm-plugin.json'), later, later);
    expect(staleReason(bundle, repo)).to.equal(undefined);
    write(path.join(dist, 'core', 'a.js'), 'export const a = 2;'); // same size, other content
    expect(staleReason(bundle, repo)).to.match(/core\/a\.js changed/);
  });

  it("a copy whose mtimes lost their fraction (mke2fs -d, the sandbox's image) is fresh without reading inputs", () => {
    const a = path.join(dist, 'core', 'a.js');
    const t = new Date(Math.floor(Date.now() / 1000) * 1000 - 5500); // x.5 s: a fraction to lose
    fs.utimesSync(a, t, t);
    stampNow();
    write(a, 'export const a = 2;'); // same size, other content: only a read could tell
    const cut = new Date(t.getTime() - 500);
    fs.utimesSync(a, cut, cut);
    expect(staleReason(bundle, repo)).to.equal(undefined);
    fs.utimesSync(a, new Date(t.getTime() + 1500), new Date(t.getTime() + 1500)); // any other mtime: hashed
    expect(staleReason(bundle, repo)).to.match(/core\/a\.js changed/);
  });

  it('no stamp, a broken stamp or another version: not used', () => {
    fs.rmSync(path.join(bundle, STAMP_FILE));
    expect(staleReason(bundle, repo)).to.match(/no readable bundle\.json/);
    write(path.join(bundle, STAMP_FILE), '{ nope');
    expect(staleReason(bundle, repo)).to.match(/no readable/);
    write(path.join(bundle, STAMP_FILE), JSON.stringify({ version: 99, inputs: {}, manifests: {}, outputs: [] }));
    expect(staleReason(bundle, repo)).to.match(/unknown format/);
    expect(chooseEntry(dist, repo, ['run', 'vm.yaml'], {}).entry).to.equal(plain);
  });

  it('bundles the CLI and each repository plugin whose compiled entry exists', () => {
    write(path.join(repo, 'plugins', 'unbuilt', 'vmm-plugin.json'), '{"name":"unbuilt","entry":"./plugin.js"}');
    write(path.join(repo, 'plugins', 'escape', 'vmm-plugin.json'), '{"name":"escape","entry":"../../../x.js"}');
    write(path.join(tmp, 'x.js'), '');
    expect(bundleEntries(dist, repo)).to.deep.equal([plain, path.join(dist, 'plugins', 'one', 'plugin.js')]);
  });

  it('this repository: every plugin entry of the build is a bundle entry; shared-state packages stay outside', () => {
    const loc = buildLocations();
    const entries = bundleEntries(loc.distDir, loc.repoRoot).map((e) => path.relative(loc.distDir, e));
    expect(entries)
      .to.include('hosts/cli/run-main.js')
      .and.include('plugins/kvm/plugin.js')
      .and.include('plugins/x86/plugin.js')
      .and.include('plugins/migration/cli.js', "a plugin's commands (vmm restore, receive) are bundled too");
    expect(REQUIRED_EXTERNALS).to.include('reflect-metadata').and.include('koffi');
    expect(SHARED_VENDORS, 'tsyringe: one instance shared with plugins outside the bundle').to.include('tsyringe');
  });

  it('shared packages become require() with the same named exports (reserved words aliased)', () => {
    const hooks: { filter: RegExp; fn: (a: { path: string }) => unknown }[] = [];
    requireExternals().setup({
      onResolve: (o: { filter: RegExp }, fn: (a: { path: string }) => unknown) => {
        hooks.push({ filter: o.filter, fn });
      },
      onLoad: (o: { filter: RegExp }, fn: (a: { path: string }) => unknown) => {
        hooks.push({ filter: o.filter, fn });
      },
    });
    const [resolve, load] = hooks;
    expect(resolve.filter.test('koffi')).to.equal(true);
    expect(resolve.filter.test('koffi/x')).to.equal(false);
    expect(resolve.filter.test('zod')).to.equal(false);
    expect(resolve.fn({ path: 'koffi' })).to.deep.equal({ path: 'koffi', namespace: 'tsvmm-require' });
    const koffi = (load.fn({ path: 'koffi' }) as { contents: string }).contents;
    expect(koffi).to.match(/const e\d+ = m\["in"\]; export \{ e\d+ as in \};/);
  });
});
