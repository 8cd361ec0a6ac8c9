import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tokens } from '../tokens.js';
import { buildLocations } from '../plugin/locations.js';
import { ConfigError } from '../config/errors.js';
import { PluginError } from '../plugin/errors.js';
import { tinyMachineMockHypervisor } from '../../test/fixtures/tiny-machine/machine.js';
import type { TinyMachine } from '../../test/fixtures/tiny-machine/machine.js';
import { assembleVm } from './assemble.js';
import { CORE_TOKENS, planVm } from './plan.js';
import { runVm } from './run.js';
import { silentLogger } from './logger.js';
import { AssemblyError } from './errors.js';
import { exitCodeFor } from './exit-codes.js';

const loc = buildLocations();
const fixtures = path.join(loc.repoRoot, 'test', 'fixtures');
const tinyYaml = path.join(fixtures, 'tiny-vm.yaml');
const mockHv = path.join(fixtures, 'mock-hypervisor');
const logger = silentLogger();
const noDiscovery = { discovery: { pluginDirs: [], nodeModules: [] } };

/** A plugin written as plain JS + manifest in a temp folder outside the repository. */
function writePlugin(dir: string, manifest: object, js: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'vmm-plugin.json'),
    JSON.stringify({ version: '1.0.0', provides: [], requires: [], entry: './plugin.js', ...manifest }),
  );
  fs.writeFileSync(path.join(dir, 'plugin.js'), js);
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  return expect.fail('expected a rejection');
}

describe('assembleVm / runVm', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-asm-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("swap: the same YAML runs with kvm replaced by the mock-hypervisor plugin, which takes the entry's config", async () => {
    // tiny-vm.yaml with a config on its kvm entry that only the mock's schema knows: the mock's
    // vCPU prints it on the console, so the output proves which plugin ran the vCPU
    const yaml = fs
      .readFileSync(tinyYaml, 'utf8')
      .replace('  - name: kvm\n', '  - name: kvm\n    config:\n      outText: ran on the mock\n')
      .replace('path: ./tiny-machine', `path: ${path.join(fixtures, 'tiny-machine')}`);
    const file = path.join(tmp, 'swap.yaml');
    fs.writeFileSync(file, yaml);
    let machine: TinyMachine | undefined;
    const r = await runVm(file, {
      ...noDiscovery,
      logger,
      signals: [],
      replacePlugins: { kvm: mockHv },
      onStarted: (vm) => {
        machine = vm.machine as TinyMachine;
      },
    });
    expect(r).to.deep.equal({ reason: { kind: 'poweroff' }, exitCode: 0, restarts: 0 });
    expect(Buffer.from(machine!.console.writtenBytes()).toString()).to.equal('ran on the mock');
    // without the swap the same file names kvm, whose schema refuses the mock's key
    const err = await rejects(planVm(file));
    expect(err.message).to.match(/plugins\[0\]\.config.*outText/);
  });

  it('swap: an override hook re-registers Hypervisor after the plugins; every call is recorded', async () => {
    const hv = tinyMachineMockHypervisor(() =>
      [...Buffer.from('hi')].map((b) => ({
        kind: 'io' as const,
        space: 'pio' as const,
        direction: 'out' as const,
        port: 0xe9,
        size: 1 as const,
        count: 1,
        data: Uint8Array.of(b),
      })),
    );
    const vm = await assembleVm(tinyYaml, {
      ...noDiscovery,
      logger,
      replacePlugins: { kvm: mockHv },
      override: (c) => {
        c.register(Tokens.Hypervisor.token, { useValue: hv });
      },
    });
    const m = vm.machine as TinyMachine;
    await m.start();
    expect(await m.stopped).to.deep.equal({ kind: 'poweroff' });
    await vm.dispose();
    expect(Buffer.from(m.console.writtenBytes()).toString()).to.equal('hi');
    expect(hv.calls.map((c) => `${c.target}.${c.method}`)).to.include.members([
      'hypervisor.probe',
      'hypervisor.createVm',
      'vm.setMemorySlot',
      'vm.createVcpu',
      'vcpu0.setRegs',
      'vcpu0.run',
      'vm.close',
    ]);
    expect(hv.callsTo('vcpu0', 'run')).to.have.length(3); // two outs and the final hlt
    expect(hv.vms[0].slots.get(0)!.hostAddress).to.not.equal(0n); // real anonymous-mmap memory
  });

  it('registers the core singletons in a child container, not the global one', async () => {
    const vm = await assembleVm({ config: { plugins: [] } }, { ...noDiscovery, logger });
    // every token the planner counts as the kernel's (CORE_TOKENS) is registered by assembly
    for (const t of CORE_TOKENS as ReadonlySet<keyof typeof Tokens>) {
      expect(vm.container.isRegistered((Tokens[t] as { token: symbol }).token, false), t).to.equal(true);
    }
    const { container: root } = await import('tsyringe');
    expect(root.isRegistered(Tokens.Bus.token)).to.equal(false);
    expect(vm.machine).to.equal(undefined);
    await vm.dispose();
  });

  it('a failing register() disposes what earlier plugins registered, in reverse order', async () => {
    const log = path.join(tmp, 'log.txt');
    const mk = (name: string, requires: string[], provides: string[], body: string) =>
      writePlugin(
        path.join(tmp, name),
        { name, requires, provides },
        `import * as fs from 'node:fs';\nexport default { register(c, ctx) { ${body} } };`,
      );
    mk(
      'first',
      [],
      ['A'],
      `fs.appendFileSync(${JSON.stringify(log)}, 'reg first\\n'); return [{ dispose() { fs.appendFileSync(${JSON.stringify(log)}, 'undo first\\n'); } }];`,
    );
    mk(
      'second',
      ['A'],
      ['B'],
      `fs.appendFileSync(${JSON.stringify(log)}, 'reg second\\n'); return [{ dispose() { fs.appendFileSync(${JSON.stringify(log)}, 'undo second\\n'); } }];`,
    );
    mk('third', ['B'], [], `throw new Error('no /dev/thing');`);
    fs.writeFileSync(path.join(tmp, 'vm.yaml'), 'plugins:\n  - path: ./third\n  - path: ./second\n  - path: ./first\n');
    const e = await rejects(assembleVm(path.join(tmp, 'vm.yaml'), { ...noDiscovery, logger }));
    expect(e).to.be.instanceOf(AssemblyError);
    expect(e.message).to.contain("'third'").and.contain('no /dev/thing');
    expect(fs.readFileSync(log, 'utf8')).to.equal('reg first\nreg second\nundo second\nundo first\n');
  });

  it("plugin config errors point into the plugin's config block", async () => {
    fs.writeFileSync(
      path.join(tmp, 'vm.yaml'),
      `plugins:\n  - name: kvm\n  - path: ${path.join(fixtures, 'tiny-machine')}\n    config:\n      text: hi\n      colour: blue\n`,
    );
    const e = await rejects(planVm(path.join(tmp, 'vm.yaml'), { ...noDiscovery, replacePlugins: { kvm: mockHv } }));
    expect(e).to.be.instanceOf(ConfigError);
    expect((e as ConfigError).where).to.deep.include({ line: 6, column: 7, key: 'plugins[1].config.colour' });
  });

  it('unknown plugins, missing providers and duplicate instances are clear errors', async () => {
    fs.writeFileSync(path.join(tmp, 'a.yaml'), 'plugins:\n  - name: nosuch\n');
    const e1 = await rejects(planVm(path.join(tmp, 'a.yaml'), noDiscovery));
    expect(e1.message).to.match(/a\.yaml:2:\d+: plugins\[0\]\.name: unknown plugin 'nosuch'/);
    fs.writeFileSync(path.join(tmp, 'b.yaml'), `plugins:\n  - path: ${path.join(fixtures, 'tiny-machine')}\n`);
    const e2 = await rejects(planVm(path.join(tmp, 'b.yaml'), noDiscovery));
    expect(e2).to.be.instanceOf(ConfigError);
    expect((e2 as ConfigError).cause).to.be.instanceOf(PluginError); // an ordering error, pointing at its entry
    expect(e2.message).to.match(/b\.yaml:2:5: plugins\[0\]: plugin 'tiny-machine' requires 'Hypervisor'/);
    fs.writeFileSync(path.join(tmp, 'c.yaml'), `plugins:\n  - path: ${mockHv}\n  - path: ${mockHv}\n`);
    expect((await rejects(planVm(path.join(tmp, 'c.yaml'), noDiscovery))).message).to.contain('listed twice');
    fs.writeFileSync(path.join(tmp, 'd.yaml'), `plugins:\n  - path: ${mockHv}\n  - path: ${mockHv}\n    id: hv2\n`);
    expect((await rejects(planVm(path.join(tmp, 'd.yaml'), noDiscovery))).message).to.match(
      /'mock-hypervisor' and 'hv2' both provide 'Hypervisor'/,
    );
  });

  it('scans node_modules only when a listed name is not among the repository plugins (or for error hints)', async () => {
    const plugins = path.join(tmp, 'plugins');
    writePlugin(path.join(plugins, 'local'), { name: 'local' }, 'export default { register() { return []; } };');
    const nm = path.join(tmp, 'nm');
    fs.mkdirSync(path.join(nm, 'bad'), { recursive: true });
    fs.writeFileSync(path.join(nm, 'bad', 'package.json'), '{ "vmmPlugin": nope');
    fs.mkdirSync(path.join(nm, 'npm-one'), { recursive: true });
    fs.writeFileSync(
      path.join(nm, 'npm-one', 'package.json'),
      JSON.stringify({ name: 'npm-one', vmmPlugin: { name: 'npm-one', version: '1.0.0', entry: './i.js' } }),
    );
    fs.writeFileSync(path.join(nm, 'npm-one', 'i.js'), 'export default { register() { return []; } };');
    const broken: string[] = [];
    const discovery = { pluginDirs: [plugins], nodeModules: [nm], onBroken: (e: Error) => broken.push(e.message) };
    fs.writeFileSync(path.join(tmp, 'a.yaml'), 'plugins:\n  - name: local\n');
    const a = await planVm(path.join(tmp, 'a.yaml'), { discovery });
    expect(a.plugins.map((p) => p.instance)).to.deep.equal(['local']);
    expect(broken, 'node_modules was not read').to.deep.equal([]);
    expect([...a.discovered.keys()].sort(), 'the plan still lists every plugin on request').to.deep.equal([
      'local',
      'npm-one',
    ]);
    fs.writeFileSync(path.join(tmp, 'b.yaml'), 'plugins:\n  - name: local\n  - name: npm-one\n');
    broken.length = 0;
    const b = await planVm(path.join(tmp, 'b.yaml'), { discovery });
    expect(b.plugins.map((p) => `${p.instance}:${p.plugin.source}`)).to.deep.equal(['local:repo', 'npm-one:npm']);
    expect(broken).to.have.length(1);
    fs.writeFileSync(path.join(tmp, 'c.yaml'), 'plugins:\n  - name: nope\n');
    expect((await rejects(planVm(path.join(tmp, 'c.yaml'), { discovery }))).message).to.contain(
      '(discovered: local, npm-one)',
    );
  });

  it('runVm without a machine plugin fails clearly; exit codes map stop reasons', async () => {
    const e = await rejects(runVm({ config: {} }, { ...noDiscovery, logger, signals: [] }));
    expect(e.message).to.contain("no plugin provides 'Machine'");
    expect(exitCodeFor({ kind: 'poweroff' })).to.equal(0);
    expect(exitCodeFor({ kind: 'triple-fault' })).to.equal(3);
    expect(exitCodeFor({ kind: 'signal', signal: 'SIGTERM' })).to.equal(143);
    expect(exitCodeFor({ kind: 'signal', signal: 'SIGINT' })).to.equal(130);
    expect(exitCodeFor({ kind: 'error', error: new Error() })).to.equal(1);
  });

  it('a plugin outside the repo, named by path: is discovered, its config validated, registered, and listed by `vmm plugins --config`', async () => {
    const zodUrl = import.meta.resolve('zod');
    const pdir = path.join(tmp, 'ext', 'hello-dev');
    writePlugin(
      pdir,
      {
        name: 'hello-dev',
        description: 'an external test plugin',
        requires: ['Bus', 'DeviceRegistry'],
        provides: ['HelloDev'],
      },
      `
import { z } from ${JSON.stringify(zodUrl)};
export default {
  configSchema: z.strictObject({ port: z.number().int().max(0xffff), greeting: z.string().default('hello') }),
  register(container, ctx) {
    const reg = container.resolve(Symbol.for('tsvmm.DeviceRegistry'));
    reg.add({ id: ctx.instance + ':' + ctx.config.greeting + ':' + ctx.config.port });
    return [];
  },
};`,
    );
    const yaml = path.join(tmp, 'vm.yaml');
    fs.writeFileSync(yaml, 'plugins:\n  - path: ./ext/hello-dev\n    id: hello0\n    config:\n      port: 0x402\n');
    const vm = await assembleVm(yaml, { ...noDiscovery, logger });
    const devices = vm.container
      .resolve(Tokens.DeviceRegistry.token)
      .all()
      .map((d) => d.id);
    expect(devices).to.deep.equal(['hello0:hello:1026']);
    await vm.dispose();

    fs.writeFileSync(
      path.join(tmp, 'bad.yaml'),
      'plugins:\n  - path: ./ext/hello-dev\n    config:\n      port: 70000\n',
    );
    const e = await rejects(planVm(path.join(tmp, 'bad.yaml'), noDiscovery));
    expect((e as ConfigError).where).to.deep.include({ line: 4, key: 'plugins[0].config.port' });

    const bin = path.join(loc.repoRoot, 'bin', 'vmm.js');
    const env = { ...process.env, VMM_DIST: loc.distDir };
    const list = spawnSync(process.execPath, [bin, 'plugins', '--config', yaml], {
      env,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(list.status, list.stderr).to.equal(0);
    expect(list.stdout)
      .to.contain('hello-dev 1.0.0 [path]')
      .and.contain('provides: HelloDev')
      .and.contain('requires: Bus, DeviceRegistry');

    const val = spawnSync(process.execPath, [bin, 'validate', path.join(tmp, 'bad.yaml')], {
      env,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(val.status).to.equal(2);
    expect(val.stderr.trim().split('\n')).to.have.length(1);
    expect(val.stderr).to.match(/bad\.yaml:4:\d+: plugins\[0\]\.config\.port: /);
    expect(val.stderr).to.not.contain('    at ');
    const ok = spawnSync(process.execPath, [bin, 'validate', yaml], { env, encoding: 'utf8', timeout: 30_000 });
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stdout).to.contain('ok (1 plugin: hello0)');
  });
});
