import 'reflect-metadata';
import { expect } from 'chai';
import { container as root, inject, injectable, Lifecycle } from 'tsyringe';
import { VmLifecycle } from '../lifecycle.js';
import { silentLogger } from '../vmm/logger.js';
import { PLUGIN_CONFIG, PLUGIN_INSTANCE, Tokens } from '../tokens.js';
import type { PluginMain, PluginManifest, PluginModule } from './plugin.js';
import { registerPluginInstance, type PluginInstanceOptions } from './instance.js';
import { PluginError } from './errors.js';
import { manifestsEnforced } from './enforce.js';

// untyped, as a plain-JS plugin writes them (the same symbols as Tokens.Bus.token ...)
const BUS = Symbol.for('tsvmm.Bus');
const FORMAT = Symbol.for('tsvmm.DiskFormat');

interface Named {
  name: string;
}

const manifest = (m: Partial<PluginManifest>): PluginManifest => ({
  name: 'p',
  version: '1.0.0',
  provides: [],
  requires: [],
  entry: './plugin.js',
  ...m,
});
const info = (instance: string, config: unknown) => ({
  config,
  instance,
  vm: {} as never,
  logger: silentLogger(),
  lifecycle: new VmLifecycle(),
  baseDir: '.',
});
const enforced = (m: Partial<PluginManifest>): PluginInstanceOptions => ({
  manifest: manifest(m),
  manifestPath: '/x/p/vmm-plugin.json',
  enforce: true,
});

async function undeclared(p: Promise<unknown>): Promise<PluginError> {
  try {
    await p;
  } catch (e) {
    // tsyringe wraps errors from constructor parameters in a plain Error naming the class
    const err = e instanceof PluginError ? e : (e as Error);
    return err as PluginError;
  }
  return expect.fail('expected an undeclared-token error');
}

@injectable()
class Disk implements PluginMain {
  static attached: string[] = [];
  constructor(
    @inject(PLUGIN_CONFIG) private readonly cfg: { path: string },
    @inject(PLUGIN_INSTANCE) private readonly instance: string,
    @inject(BUS) private readonly bus: Named,
  ) {}
  attach() {
    Disk.attached.push(`${this.instance}:${this.cfg.path}:${this.bus.name}`);
    return [{ dispose: () => void Disk.attached.push(`-${this.instance}`) }];
  }
}

@injectable()
class Format implements Named {
  constructor(@inject(PLUGIN_CONFIG) private readonly cfg: { name: string }) {}
  get name(): string {
    return this.cfg.name;
  }
}

describe('plugin scopes: constructor injection per instance', () => {
  beforeEach(() => (Disk.attached = []));

  it('builds each instance of a plugin listed twice with its own config and name', async () => {
    const vm = root.createChildContainer();
    vm.register(BUS, { useValue: { name: 'bus0' } });
    const plugin: PluginModule = { main: Disk };
    const d1 = await registerPluginInstance(
      vm,
      plugin,
      info('disk1', { path: 'a.img' }),
      enforced({ requires: ['Bus'] }),
    );
    const d2 = await registerPluginInstance(
      vm,
      plugin,
      info('disk2', { path: 'b.img' }),
      enforced({ requires: ['Bus'] }),
    );
    expect(Disk.attached).to.deep.equal(['disk1:a.img:bus0', 'disk2:b.img:bus0']);
    for (const d of [...d2, ...d1]) d.dispose();
    expect(Disk.attached.slice(2)).to.deep.equal(['-disk2', '-disk1']);
  });

  it('publishes provided tokens to the VM, built in the provider instance (multiple providers coexist)', async () => {
    const vm = root.createChildContainer();
    const plugin: PluginModule = {
      register: (c) => void c.register(FORMAT, { useClass: Format }, { lifecycle: Lifecycle.ContainerScoped }),
    };
    await registerPluginInstance(vm, plugin, info('raw', { name: 'raw' }), enforced({ provides: ['DiskFormat'] }));
    await registerPluginInstance(vm, plugin, info('qcow', { name: 'qcow2' }), enforced({ provides: ['DiskFormat'] }));
    const all = vm.resolveAll(FORMAT) as Named[];
    expect(all.map((f) => f.name)).to.deep.equal(['raw', 'qcow2']);
    expect(vm.resolveAll(FORMAT)[0]).to.equal(all[0]); // container-scoped: one per VM
  });

  it('keeps other registrations private to the instance', async () => {
    const vm = root.createChildContainer();
    const secret = Symbol('secret');
    await registerPluginInstance(vm, { register: (c) => void c.register(secret, { useValue: 1 }) }, info('a', {}));
    expect(vm.isRegistered(secret, true)).to.equal(false);
  });

  it('lets a test swap a backend by registering another class for the token in the VM container', async () => {
    const vm = root.createChildContainer();
    const seen: string[] = [];
    @injectable()
    class User implements PluginMain {
      constructor(@inject(FORMAT) private readonly f: Named) {}
      attach() {
        seen.push(this.f.name);
      }
    }
    const provider: PluginModule = { register: (c) => void c.register(FORMAT, { useValue: { name: 'real' } }) };
    await registerPluginInstance(vm, provider, info('real', {}), enforced({ provides: ['DiskFormat'] }));
    class Fake implements Named {
      name = 'fake';
    }
    vm.register(FORMAT, { useClass: Fake });
    await registerPluginInstance(vm, { main: User }, info('user', {}), enforced({ requires: ['DiskFormat'] }));
    expect(seen).to.deep.equal(['fake']);
  });
});

describe('plugin scopes: manifest enforcement', () => {
  const vm = root.createChildContainer();
  vm.register(BUS, { useValue: { name: 'bus0' } });

  it('is on under mocha, NODE_ENV=test and VMM_DEBUG=1, off otherwise', () => {
    expect(manifestsEnforced()).to.equal(true);
    expect(manifestsEnforced({ NODE_ENV: 'test' })).to.equal(true);
    expect(manifestsEnforced({ VMM_DEBUG: '1' })).to.equal(true);
  });

  it('refuses a resolve of an undeclared token, naming plugin, token and manifest', async () => {
    const plugin: PluginModule = { register: (c) => void c.resolve(BUS) };
    const e = await undeclared(registerPluginInstance(vm, plugin, info('hello0', {}), enforced({})));
    expect(e).to.be.instanceOf(PluginError);
    expect(e.kind).to.equal('Undeclared');
    expect(e.message).to.contain("plugin 'hello0'").and.contain("token 'Bus'").and.contain('/x/p/vmm-plugin.json');
    await registerPluginInstance(vm, plugin, info('hello0', {}), enforced({ uses: ['Bus'] }));
  });

  it('refuses an undeclared token injected into a constructor parameter', async () => {
    const e = await undeclared(registerPluginInstance(vm, { main: Disk }, info('disk1', { path: 'x' }), enforced({})));
    expect(e.message).to.contain('Disk').and.contain("plugin 'disk1'").and.contain("token 'Bus'");
  });

  it('refuses ctx.optional of an undeclared token even when it is absent', async () => {
    const plugin: PluginModule = { register: (_c, ctx) => void ctx.optional(Tokens.Vm.token) };
    const e = await undeclared(registerPluginInstance(vm, plugin, info('x', {}), enforced({})));
    expect(e.message).to.contain("token 'Vm'");
    await registerPluginInstance(vm, plugin, info('x', {}), enforced({ optional: ['Vm'] }));
  });

  it('refuses to register a token the manifest does not provide', async () => {
    const plugin: PluginModule = { register: (c) => void c.register(FORMAT, { useValue: {} }) };
    const e = await undeclared(
      registerPluginInstance(vm, plugin, info('fmt', {}), enforced({ requires: ['DiskFormat'] })),
    );
    expect(e.message).to.contain("registers token 'DiskFormat'").and.contain('provides');
  });

  it('checks nothing when enforcement is off', async () => {
    const plugin: PluginModule = { register: (c) => void c.resolve(BUS) };
    await registerPluginInstance(vm, plugin, info('x', {}), { manifest: manifest({}), enforce: false });
  });
});
