import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VmPlan } from '../vmm/plan.js';
import { landlockRules } from './landlock-paths.js';

describe('core/security landlockRules', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-ll-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('allows what the config names, the folder of sockets to be made, and nothing for non-paths', () => {
    writeFileSync(join(dir, 'disk.img'), '');
    writeFileSync(join(dir, 'vmlinux'), '');
    mkdirSync(join(dir, 'sockets'));
    const plan = {
      baseDir: dir,
      config: {
        machine: { vcpus: 1, memory: 1n },
        boot: { kernel: 'vmlinux', initramfs: 'guestkit:initramfs' },
        plugins: [],
      },
      plugins: [
        { config: { disk: { path: 'disk.img' }, name: 'vda', readOnly: false } },
        { config: { console: { kind: 'unix', path: 'sockets/console.sock' }, note: 'missing/thing' } },
        {
          config: {},
          plugin: { dir: join(dir, 'my-plugin'), entryPath: join(dir, 'my-plugin', 'dist', 'plugin.js') },
        },
      ],
    } as unknown as VmPlan;
    const rules = landlockRules(plan);
    const writable = rules.filter((r) => r.access === 'write').map((r) => r.path);
    expect(writable).to.include.members([
      join(dir, 'vmlinux'),
      join(dir, 'disk.img'),
      join(dir, 'sockets'),
      '/dev/kvm',
    ]);
    expect(writable).to.not.include(dir); // 'vda', 'missing/thing' and guestkit:initramfs name nothing here
    expect(rules.some((r) => r.path === '/etc' || r.path === '/')).to.equal(false);
    expect(rules.find((r) => r.path === '/proc')?.access).to.equal('read');
    // an out-of-tree plugin's folder and its entry's folder: read-only
    const readable = rules.filter((r) => r.access === 'read').map((r) => r.path);
    expect(readable).to.include.members([join(dir, 'my-plugin'), join(dir, 'my-plugin', 'dist')]);
    expect(writable).to.not.include(join(dir, 'my-plugin'));
    expect(readable, 'no config file named').to.not.include(join(dir, 'vm.yaml'));
  });

  it('lets the VMM read its YAML file again (the landlocked child reads the same command line), nothing else there', () => {
    writeFileSync(join(dir, 'vm.yaml'), 'machine: {}\n');
    const plan = {
      baseDir: dir,
      source: { file: join(dir, 'vm.yaml') },
      config: { machine: { vcpus: 1, memory: 1n }, plugins: [] },
      plugins: [],
    } as unknown as VmPlan;
    const rules = landlockRules(plan);
    expect(rules.filter((r) => r.path.startsWith(dir))).to.deep.equal([{ path: join(dir, 'vm.yaml'), access: 'read' }]);
    // an object config names no file
    const inline = { ...plan, source: { file: '<config>' } } as unknown as VmPlan;
    expect(landlockRules(inline).filter((r) => r.path.startsWith(dir))).to.deep.equal([]);
  });
});
