import 'reflect-metadata';
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';
import { runVm } from '../../core/vmm/run.js';
import { silentLogger } from '../../core/vmm/logger.js';

// "Done when" of issue 12: a plugin written outside the repository, in TypeScript with decorators,
// that uses only constructor injection (no resolve anywhere in its code) and the published exports
// (`tsvmm`), is compiled against the published type declarations and runs in a VM (mock hypervisor).

const loc = buildLocations();
const fixtures = path.join(loc.repoRoot, 'test', 'fixtures');

const PLUGIN_TS = `
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import {
  BUS, DEVICE_REGISTRY, GuestRange, PLUGIN_CONFIG, PLUGIN_CONTEXT, inject, injectable,
  type Bus, type BusDevice, type DeviceRegistry, type Disposable, type PluginContext, type PluginMain,
  type PluginModule,
} from 'tsvmm';

const Config = z.strictObject({ port: z.number().int().min(0).max(0xffff), file: z.string() });
type Config = z.output<typeof Config>;

/** A debug port: what the guest writes to it is appended to a file. */
class Recorder implements BusDevice {
  private readonly fd: number;
  constructor(readonly id: string, file: string) {
    this.fd = fs.openSync(file, 'a');
  }
  read(_offset: bigint, data: Uint8Array): void {
    data.fill(0xe9);
  }
  write(_offset: bigint, data: Uint8Array): void {
    fs.writeSync(this.fd, data);
  }
  destroy(): void {
    fs.writeSync(this.fd, '|closed');
    fs.closeSync(this.fd);
  }
}

@injectable()
class Hello implements PluginMain {
  constructor(
    @inject(PLUGIN_CONFIG) private readonly config: Config,
    @inject(PLUGIN_CONTEXT) private readonly ctx: PluginContext<Config>,
    @inject(BUS) private readonly bus: Bus,
    @inject(DEVICE_REGISTRY) private readonly devices: DeviceRegistry,
  ) {}

  attach(): Disposable[] {
    const dev = new Recorder(this.ctx.instance, path.resolve(this.ctx.baseDir, this.config.file));
    return [this.devices.add(dev), this.bus.register('pio', GuestRange.of(this.config.port, 1), dev, dev.id)];
  }
}

const plugin: PluginModule<Config> = { configSchema: Config, main: Hello };
export default plugin;
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2023',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023'],
    types: ['node'],
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    skipLibCheck: true,
    rootDir: 'src',
    outDir: '.',
  },
  files: ['src/plugin.ts'],
};

const manifest = (requires: string[]) => ({
  name: 'hello',
  version: '1.0.0',
  provides: [],
  requires,
  entry: './plugin.js',
});

/** Writes the plugin package into `dir` (its node_modules links to this checkout, as `npm i tsvmm` would). */
function writePlugin(dir: string): void {
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'hello', type: 'module' }));
  fs.writeFileSync(path.join(dir, 'src', 'plugin.ts'), PLUGIN_TS);
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG));
  fs.writeFileSync(path.join(dir, 'vmm-plugin.json'), JSON.stringify(manifest(['Bus', 'DeviceRegistry'])));
  const nm = path.join(loc.repoRoot, 'node_modules');
  fs.symlinkSync(loc.repoRoot, path.join(dir, 'node_modules', 'tsvmm'));
  fs.symlinkSync(path.join(nm, 'zod'), path.join(dir, 'node_modules', 'zod'));
  fs.symlinkSync(path.join(nm, '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'));
}

describe('an out-of-tree plugin written with constructor injection and the published exports', function () {
  this.timeout(60_000);
  let tmp: string;
  let pluginDir: string;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-oot-'));
    pluginDir = path.join(tmp, 'hello');
    writePlugin(pluginDir);
    const tsc = path.join(loc.repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', pluginDir], { encoding: 'utf8', timeout: 50_000 });
    expect(r.stdout + r.stderr, 'the plugin compiles against the published declarations').to.equal('');
    expect(r.status).to.equal(0);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const writeVm = (plugin: string): string => {
    const file = path.join(tmp, 'vm.yaml');
    fs.writeFileSync(
      file,
      [
        'machine: { vcpus: 1, memory: 64K }',
        'plugins:',
        `  - path: ${path.join(fixtures, 'mock-hypervisor')}`,
        '    config: { outPort: 0x402, outText: "hello from the guest" }',
        `  - path: ${path.join(fixtures, 'tiny-machine')}`,
        '    config: { port: 0x80 }',
        `  - path: ${plugin}`,
        '    id: hello0',
        '    config: { port: 0x402, file: hello.log }',
        '',
      ].join('\n'),
    );
    return file;
  };

  it('assembles and runs a VM with it; its device is torn down through the Disposable it returned', async () => {
    const log = path.join(tmp, 'hello.log');
    fs.rmSync(log, { force: true });
    const src = fs.readFileSync(path.join(pluginDir, 'src', 'plugin.ts'), 'utf8');
    expect(src.replace(/path\.resolve\(/g, ''), 'no service locator').to.not.match(/resolve(All)?\(|container/i);
    const r = await runVm(writeVm(pluginDir), { logger: silentLogger(), signals: [], enforceManifests: true });
    expect(r.reason).to.deep.equal({ kind: 'poweroff' });
    expect(fs.readFileSync(log, 'utf8')).to.equal('hello from the guest|closed');
  });

  it('with manifests enforced, a constructor injection its manifest does not declare fails naming plugin and token', async () => {
    const broken = path.join(tmp, 'hello-broken');
    fs.cpSync(pluginDir, broken, { recursive: true, verbatimSymlinks: true });
    fs.writeFileSync(path.join(broken, 'vmm-plugin.json'), JSON.stringify(manifest(['DeviceRegistry'])));
    let err: Error | undefined;
    await runVm(writeVm(broken), { logger: silentLogger(), signals: [], enforceManifests: true }).catch(
      (e: Error) => (err = e),
    );
    expect(err?.message).to.contain("plugin 'hello0'").and.contain("token 'Bus'").and.contain('requires');
  });
});
