import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  clearDiscoveryCache,
  defaultNodeModules,
  discoverPlugins,
  readPluginAt,
  type DiscoveredPlugin,
} from './discovery.js';
import { orderPlugins, type PluginInstance } from './order.js';
import { parseManifest } from './manifest.js';
import { resolvePluginModule, buildLocations } from './locations.js';
import { loadPluginModule } from './load-module.js';
import { PluginError } from './errors.js';

function perr(fn: () => unknown): PluginError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(PluginError);
    return e as PluginError;
  }
  return expect.fail('expected a PluginError');
}

const fake = (name: string, provides: string[], requires: string[] = [], optional?: string[]): DiscoveredPlugin => ({
  manifest: { name, version: '1.0.0', provides, requires, optional, entry: './plugin.js' },
  manifestPath: `/x/${name}/vmm-plugin.json`,
  dir: `/x/${name}`,
  source: 'repo',
  entryPath: `/x/${name}/plugin.js`,
});
const inst = (ps: DiscoveredPlugin[]): PluginInstance[] =>
  ps.map((plugin, index) => ({ plugin, index, instance: plugin.manifest.name }));
const opts = {
  coreTokens: new Set(['Bus', 'EventLoop']),
  cardinality: (t: string) => (t === 'Hypervisor' || t === 'Machine' ? ('singular' as const) : ('multiple' as const)),
};

describe('plugin manifests', () => {
  it('accepts a valid manifest and fills defaults', () => {
    const m = parseManifest({ name: 'serial', version: '0.1.0', entry: './plugin.js' }, 'x.json');
    expect(m.provides).to.deep.equal([]);
    expect(m.requires).to.deep.equal([]);
  });
  it('rejects unknown keys and bad names, naming the file', () => {
    expect(perr(() => parseManifest({ name: 'a', version: '1', entry: 'e', bogus: 1 }, 'm.json')).message).to.match(
      /m\.json.*bogus/,
    );
    expect(perr(() => parseManifest({ name: '../evil', version: '1', entry: 'e' }, 'm.json')).kind).to.equal(
      'Manifest',
    );
    expect(perr(() => parseManifest({ name: 'a', version: '1' }, 'm.json')).message).to.contain('entry');
  });
});

describe('plugin ordering', () => {
  it('orders providers before dependants, keeping YAML order otherwise', () => {
    const out = orderPlugins(
      inst([
        fake('serial', [], ['Machine']),
        fake('arch', ['Machine'], ['Hypervisor', 'Bus']),
        fake('kvm', ['Hypervisor']),
        fake('rtc', []),
      ]),
      opts,
    );
    expect(out.map((p) => p.instance)).to.deep.equal(['kvm', 'arch', 'serial', 'rtc']);
  });
  it('optional requirements order only when present', () => {
    const out = orderPlugins(inst([fake('a', [], [], ['Net']), fake('b', ['Net'])]), opts);
    expect(out.map((p) => p.instance)).to.deep.equal(['b', 'a']);
    expect(orderPlugins(inst([fake('a', [], [], ['Net'])]), opts).map((p) => p.instance)).to.deep.equal(['a']);
  });
  it('missing provider names the requiring plugin and the token', () => {
    const e = perr(() =>
      orderPlugins(inst([fake('arch', ['Machine'], ['Hypervisor'])]), {
        ...opts,
        hint: () => 'discovered plugins providing it: kvm',
      }),
    );
    expect(e.kind).to.equal('MissingProvider');
    expect(e.message).to.contain("'arch'").and.contain("'Hypervisor'").and.contain('kvm');
  });
  it('core tokens need no plugin', () => {
    expect(orderPlugins(inst([fake('dev', [], ['Bus', 'EventLoop'])]), opts)).to.have.length(1);
  });
  it('two providers of a singular token: names both', () => {
    const e = perr(() => orderPlugins(inst([fake('kvm', ['Hypervisor']), fake('mock', ['Hypervisor'])]), opts));
    expect(e.kind).to.equal('DuplicateProvider');
    expect(e.message).to.contain("'kvm'").and.contain("'mock'").and.contain('Hypervisor');
  });
  it('several providers of a multiple token are fine and all order first', () => {
    const out = orderPlugins(
      inst([fake('blk', [], ['DiskFormat']), fake('raw', ['DiskFormat']), fake('qcow', ['DiskFormat'])]),
      opts,
    );
    expect(out.map((p) => p.instance)).to.deep.equal(['raw', 'qcow', 'blk']);
  });
  it('cycles are named', () => {
    const e = perr(() =>
      orderPlugins(
        inst([fake('ok', []), fake('a', ['A'], ['B']), fake('b', ['B'], ['C']), fake('c', ['C'], ['A'])]),
        opts,
      ),
    );
    expect(e.kind).to.equal('Cycle');
    expect(e.message).to.contain('a -> b -> c -> a');
    expect(e.data.cycle).to.deep.equal(['a', 'b', 'c']);
  });
});

describe('plugin discovery', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plug-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const write = (p: string, content: unknown) => {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), typeof content === 'string' ? content : JSON.stringify(content));
  };

  it('finds folder plugins and npm packages (plain and scoped), reports broken manifests', () => {
    write('plugins/serial/vmm-plugin.json', {
      name: 'serial',
      version: '1.0.0',
      provides: [],
      requires: ['Bus'],
      entry: './plugin.js',
    });
    write('plugins/not-a-plugin/readme.txt', 'x');
    write('plugins/broken/vmm-plugin.json', '{ nope');
    write('nm/tap-net/package.json', {
      name: 'tap-net',
      version: '2.0.0',
      vmmPlugin: { name: 'tap-net', version: '2.0.0', provides: ['Net'], requires: [], entry: './index.js' },
    });
    write('nm/@acme/rng/package.json', {
      name: '@acme/rng',
      version: '1.0.0',
      vmmPlugin: { name: '@acme/rng', version: '1.0.0', entry: './rng.js' },
    });
    write('nm/lodash/package.json', { name: 'lodash', version: '4.0.0' });
    write('nm/serial/package.json', {
      name: 'serial',
      vmmPlugin: { name: 'serial', version: '9.9.9', entry: './x.js' },
    });
    const broken: string[] = [];
    const found = discoverPlugins({
      pluginDirs: [path.join(dir, 'plugins')],
      nodeModules: [path.join(dir, 'nm')],
      onBroken: (e) => broken.push(e.message),
    });
    expect([...found.keys()].sort()).to.deep.equal(['@acme/rng', 'serial', 'tap-net']);
    expect(found.get('serial')!.manifest.version).to.equal('1.0.0'); // repo wins over npm
    expect(found.get('tap-net')!.source).to.equal('npm');
    expect(found.get('tap-net')!.entryPath).to.equal(path.join(dir, 'nm/tap-net/index.js'));
    expect(found.get('@acme/rng')!.entryPath).to.equal(path.join(dir, 'nm/@acme/rng/rng.js'));
    expect(broken).to.have.length(1);
    expect(broken[0]).to.contain('broken');
  });

  it('keeps a node_modules scan until a package is added or removed there', () => {
    clearDiscoveryCache();
    const opts = { pluginDirs: [path.join(dir, 'none')], nodeModules: [path.join(dir, 'nm2')] };
    write('nm2/one/package.json', { name: 'one', vmmPlugin: { name: 'one', version: '1.0.0', entry: './i.js' } });
    write('nm2/plain/package.json', { name: 'plain' });
    expect([...discoverPlugins(opts).keys()]).to.deep.equal(['one']);
    // edited in place: the folder's mtime stays, the scan is reused
    write('nm2/plain/package.json', { name: 'plain', vmmPlugin: { name: 'plain', version: '1.0.0', entry: './i.js' } });
    expect([...discoverPlugins(opts).keys()]).to.deep.equal(['one']);
    // a package added: node_modules changed, everything is read again
    write('nm2/two/package.json', { name: 'two', vmmPlugin: { name: 'two', version: '1.0.0', entry: './i.js' } });
    expect([...discoverPlugins(opts).keys()].sort()).to.deep.equal(['one', 'plain', 'two']);
    // broken manifests are reported on every call, cached or not
    write('nm2/bad/package.json', '{ "vmmPlugin": nope');
    for (let i = 0; i < 2; i++) {
      const broken: string[] = [];
      discoverPlugins({ ...opts, onBroken: (e) => broken.push(e.message) });
      expect(broken).to.have.length(1);
    }
  });

  it('re-reads a repo manifest once it changed, keeps reporting a broken one', () => {
    const opts = { pluginDirs: [path.join(dir, 'p3')], nodeModules: [] };
    write('p3/a/vmm-plugin.json', { name: 'a', version: '1.0.0', entry: './plugin.js' });
    write('p3/b/vmm-plugin.json', '{ nope');
    const run = () => {
      const broken: string[] = [];
      const f = discoverPlugins({ ...opts, onBroken: (e) => broken.push(e.message) });
      return { f, broken };
    };
    expect(run().f.get('a')!.manifest.version).to.equal('1.0.0');
    const again = run();
    expect(again.f.get('a')!.manifest.version).to.equal('1.0.0');
    expect(again.broken).to.have.length(1);
    write('p3/a/vmm-plugin.json', { name: 'a', version: '1.0.10', entry: './plugin.js' });
    expect(run().f.get('a')!.manifest.version).to.equal('1.0.10');
  });

  it('readPluginAt reads a folder outside the repo; entry resolves beside the manifest', () => {
    write('ext/vmm-plugin.json', { name: 'ext', version: '1.0.0', entry: './main.js' });
    const p = readPluginAt(path.join(dir, 'ext'));
    expect(p.entryPath).to.equal(path.join(dir, 'ext/main.js'));
    expect(() => readPluginAt(path.join(dir, 'missing'))).to.throw(PluginError, /no vmm-plugin\.json/);
  });

  it('refuses an entry or cli module outside the plugin folder (relative, absolute, or through a link)', () => {
    write('evil.js', 'export default { register() { return []; } };');
    write('up/vmm-plugin.json', { name: 'up', version: '1.0.0', entry: '../evil.js' });
    write('abs/vmm-plugin.json', { name: 'abs', version: '1.0.0', entry: path.join(dir, 'evil.js') });
    write('cli/vmm-plugin.json', { name: 'cli', version: '1.0.0', entry: './plugin.js', cli: './x/../../evil.js' });
    write('link/vmm-plugin.json', { name: 'link', version: '1.0.0', entry: './plugin.js' });
    fs.symlinkSync(path.join(dir, 'evil.js'), path.join(dir, 'link/plugin.js'));
    for (const [name, re] of [
      ['up', /entry: module '\.\.\/evil\.js' points outside the plugin folder/],
      ['abs', /entry: .* is an absolute path/],
      ['cli', /cli: .* points outside the plugin folder/],
      ['link', /entry: .* resolves \(through a link\) to .*evil\.js, outside/],
    ] as const) {
      const e = perr(() => readPluginAt(path.join(dir, name)));
      expect(e.kind).to.equal('Manifest');
      expect(e.message)
        .to.match(re)
        .and.contain(path.join(dir, name, 'vmm-plugin.json'));
    }
    write('plugins/ok/vmm-plugin.json', { name: 'ok', version: '1.0.0', entry: './sub/plugin.js' });
    write('plugins/out/vmm-plugin.json', { name: 'out', version: '1.0.0', entry: '../../evil.js' });
    const broken: string[] = [];
    const found = discoverPlugins({
      pluginDirs: [path.join(dir, 'plugins')],
      nodeModules: [],
      onBroken: (e) => broken.push(e.message),
    });
    expect([...found.keys()]).to.deep.equal(['ok']);
    expect(broken).to.have.length(1);
    expect(broken[0]).to.contain('outside the plugin folder');
  });

  it('errors from a plugin module are one line (line breaks and control characters from the plugin removed)', async () => {
    write('ml/vmm-plugin.json', { name: 'ml', version: '1.0.0', entry: './plugin.js' });
    write('ml/plugin.js', 'throw new Error("first line\\n    second line\\r\\nthird\\u001b[31m");');
    try {
      await loadPluginModule(readPluginAt(path.join(dir, 'ml')));
      expect.fail('expected failure');
    } catch (e) {
      expect(e).to.be.instanceOf(PluginError);
      expect((e as Error).message).to.match(/cannot load .*: first line second line third\\u001b\[31m$/);
    }
    expect(new PluginError('Register', 'a\n\tb\u2028c\u0000').message).to.equal('a b c\\u0000');
  });

  it('maps in-repo source manifests to the build folder', () => {
    const loc = buildLocations();
    const src = path.join(loc.repoRoot, 'plugins', 'serial');
    expect(resolvePluginModule(src, './plugin.js')).to.equal(path.join(loc.distDir, 'plugins', 'serial', 'plugin.js'));
    expect(resolvePluginModule(path.join(dir, 'x'), './plugin.js')).to.equal(path.join(dir, 'x', 'plugin.js'));
  });

  it('an installed tsvmm (its root in a node_modules folder) maps its own manifests to its build folder', () => {
    const root = path.join(dir, 'project', 'node_modules', 'tsvmm');
    const loc = { repoRoot: root, distDir: path.join(root, 'dist') };
    fs.mkdirSync(path.join(root, 'dist', 'plugins', 'kvm'), { recursive: true });
    fs.writeFileSync(path.join(root, 'dist', 'plugins', 'kvm', 'plugin.js'), '');
    expect(resolvePluginModule(path.join(root, 'plugins', 'kvm'), './plugin.js', loc)).to.equal(
      path.join(root, 'dist', 'plugins', 'kvm', 'plugin.js'),
    );
    // a package below its root is someone else's: taken as written
    const dep = path.join(root, 'node_modules', 'dep');
    expect(resolvePluginModule(dep, './plugin.js', loc)).to.equal(path.join(dep, 'plugin.js'));
  });

  it('discovery scans the node_modules folder an installed tsvmm sits in (where npm puts plugins beside it)', () => {
    expect(defaultNodeModules('/p/node_modules/tsvmm')).to.deep.equal([
      '/p/node_modules/tsvmm/node_modules',
      '/p/node_modules',
    ]);
    expect(defaultNodeModules('/p/node_modules/@x/tsvmm')).to.deep.equal([
      '/p/node_modules/@x/tsvmm/node_modules',
      '/p/node_modules',
    ]);
    expect(defaultNodeModules('/src/tsvmm')).to.deep.equal(['/src/tsvmm/node_modules']);
  });

  it('loadPluginModule: missing file, broken module, and missing register are clear errors', async () => {
    write('p/vmm-plugin.json', { name: 'p', version: '1.0.0', entry: './plugin.js' });
    const p = readPluginAt(path.join(dir, 'p'));
    const fails = async (re: RegExp) => {
      try {
        await loadPluginModule(p);
      } catch (e) {
        expect(e).to.be.instanceOf(PluginError);
        expect((e as Error).message).to.match(re);
        return;
      }
      expect.fail('expected failure');
    };
    await fails(/does not exist/);
    write('p/plugin.js', 'export default {;');
    await fails(/cannot load/);
    write('r/vmm-plugin.json', { name: 'r', version: '1.0.0', entry: './plugin.js' });
    write('r/plugin.js', 'export default { name: 1 };');
    try {
      await loadPluginModule(readPluginAt(path.join(dir, 'r')));
      expect.fail('expected failure');
    } catch (e) {
      expect((e as Error).message).to.match(/does not export a plugin/);
    }
    write('q/vmm-plugin.json', { name: 'q', version: '1.0.0', entry: './plugin.js' });
    write('q/plugin.js', 'export const plugin = { register() { return []; } };');
    const m = await loadPluginModule(readPluginAt(path.join(dir, 'q')));
    expect(m.register).to.be.a('function');
  });
});
