import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { StopReason } from '../../core/lifecycle.js';
import { buildLocations } from '../../core/plugin/locations.js';
import { discoverPlugins } from '../../core/plugin/discovery.js';
import { assembleVm } from '../../core/vmm/assemble.js';
import { X86Layout } from '../x86/layout.js';
import { BOOT_MARKER_VALUE } from '../boot-timer/device.js';
import { Tokens } from '../../core/tokens.js';
import { BOOT_TIMER } from '../boot-timer/plugin.js';
import { RECORDING_VM } from './fixtures/recording-vm/plugin.js';
import type { RecordingVm } from './testing.js';
import { RecordingLogger } from './testing.js';

const loc = buildLocations();
const legacy = ['serial', 'i8042', 'rtc', 'boot-timer'];

describe('legacy devices: discovery and assembly from a VM config', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvmm-legacy-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('their manifests are discovered and their entries exist in the build', () => {
    const found = discoverPlugins({ pluginDirs: [path.join(loc.repoRoot, 'plugins')], nodeModules: [] });
    for (const name of legacy) {
      const p = found.get(name);
      expect(p, name).to.not.equal(undefined);
      expect(fs.existsSync(p!.entryPath), p!.entryPath).to.equal(true);
    }
  });

  it('assemble on the real bus and allocators; guest accesses reach each device', async () => {
    const logger = new RecordingLogger();
    const vm = await assembleVm(
      {
        baseDir: tmp,
        config: {
          plugins: [
            { path: path.join(loc.repoRoot, 'plugins', 'serial', 'fixtures', 'recording-vm') },
            { name: 'serial', config: { console: { kind: 'file', path: 'console.log' } } },
            { name: 'i8042' },
            { name: 'rtc' },
            { name: 'boot-timer' },
          ],
        },
      },
      { discovery: { pluginDirs: [path.join(loc.repoRoot, 'plugins')], nodeModules: [] }, logger },
    );
    try {
      const bus = vm.container.resolve(Tokens.Bus.token);
      const rec = vm.container.resolve<RecordingVm>(RECORDING_VM);
      const requests: StopReason[] = [];
      vm.lifecycle.on('guest-request', (r) => requests.push(r));
      vm.lifecycle.emit('started');

      for (const c of Buffer.from('ok\n')) bus.write('pio', 0x3f8n, Uint8Array.of(c));
      bus.write('pio', 0x3f9n, Uint8Array.of(0x02)); // IER.THRI
      expect(rec.irqCalls).to.deep.equal([{ gsi: 4, level: true }]);

      bus.write('pio', 0x70n, Uint8Array.of(0x0d));
      const d = new Uint8Array(1);
      bus.read('pio', 0x71n, d);
      expect(d[0]).to.equal(0x80);

      bus.write('mmio', X86Layout.BOOT_TIMER, Uint8Array.of(BOOT_MARKER_VALUE));
      expect(vm.container.resolve(BOOT_TIMER).last).to.not.equal(undefined);
      expect(logger.messages('info').some((m) => m.startsWith('guest boot completed in'))).to.equal(true);

      bus.write('pio', 0x64n, Uint8Array.of(0xfe));
      expect(requests).to.deep.equal([{ kind: 'reset' }]);
    } finally {
      await vm.dispose();
    }
    expect(fs.readFileSync(path.join(tmp, 'console.log'), 'utf8'), 'console flushed and closed on dispose').to.equal(
      'ok\n',
    );
  });
});
