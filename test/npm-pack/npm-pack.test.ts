import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { installExample, installProject, packTsvmm, sh } from './pack.js';

/**
 * Issue 17: tsvmm as a plugin author gets it (`npm pack`, installed from the tarball), and the
 * out-of-tree example (examples/virtio-rng) built and tested against it, then installed beside it
 * and discovered from node_modules. Packages come from the npm cache `npm ci` filled (--prefer-offline).
 */
describe('npm pack: tsvmm installed from its tarball, with the out-of-tree virtio-rng plugin', function () {
  this.timeout(600_000);
  let tmp: string;
  let tgz: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvmm-pack-'));
    tgz = packTsvmm(tmp);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('the tarball holds the build, the manifests and the test plugins, and no tests', () => {
    const list = sh('tar', ['tzf', tgz], tmp).split('\n');
    for (const f of [
      'package/bin/vmm.js',
      'package/dist/core/index.js',
      'package/dist/core/index.d.ts',
      'package/dist/core/testing/index.js',
      'package/dist/plugins/virtio/index.js',
      'package/dist/plugins/kvm/plugin.js',
      'package/plugins/kvm/vmm-plugin.json',
      'package/plugins/virtio-mmio/vmm-plugin.json',
      'package/test/fixtures/mock-hypervisor/vmm-plugin.json',
      'package/dist/test/fixtures/mock-hypervisor/plugin.js',
      'package/dist/test/fixtures/tiny-machine/plugin.js',
    ])
      expect(list, f).to.include(f);
    expect(list.filter((f) => /\.test\.(js|d\.ts)$/.test(f))).to.deep.equal([]);
  });

  it('the example builds against the installed tsvmm, its tests pass, and an installed tsvmm discovers it', () => {
    const ex = path.join(tmp, 'example');
    installExample(ex, tgz);
    sh('npm', ['run', 'build'], ex);
    const mocha = sh(
      process.execPath,
      [path.join(ex, 'node_modules', 'mocha', 'bin', 'mocha.js'), 'dist/test/**/*.test.js'],
      ex,
    );
    expect(mocha).to.match(/\b10 passing\b/);
    expect(mocha).to.not.match(/failing|pending/);

    const exTgz = path.join(
      tmp,
      (
        JSON.parse(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ex)) as {
          filename: string;
        }[]
      )[0].filename,
    );
    const vmp = path.join(tmp, 'vm-project');
    installProject(vmp, { tsvmm: tgz, 'tsvmm-virtio-rng': exTgz });
    const vmm = path.join(vmp, 'node_modules', 'tsvmm', 'bin', 'vmm.js');
    const plugins = sh(process.execPath, [vmm, 'plugins'], vmp);
    expect(plugins).to.match(/^virtio-rng 0\.1\.0 \[npm\]/m);
    expect(plugins).to.contain(path.join(vmp, 'node_modules', 'tsvmm-virtio-rng', 'package.json'));
    expect(plugins).to.match(/^virtio-mmio 0\.1\.0 \[repo\]/m);

    fs.writeFileSync(path.join(vmp, 'kernel'), 'validate does not read it');
    fs.writeFileSync(
      path.join(vmp, 'vm.yaml'),
      ['machine: { vcpus: 1, memory: 128M }', 'boot: { kernel: kernel }', 'plugins:']
        .concat(['kvm', 'acpi', 'x86', 'virtio-mmio'].map((n) => `  - name: ${n}`))
        .concat(['  - name: virtio-rng', '    id: rng0', '    config: { queueSize: 64 }', ''])
        .join('\n'),
    );
    expect(sh(process.execPath, [vmm, 'validate', 'vm.yaml'], vmp)).to.match(/^vm\.yaml: ok \(5 plugins: .*rng0\)/);
  });
});
