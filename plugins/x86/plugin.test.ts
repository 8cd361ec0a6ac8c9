import 'reflect-metadata';
import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { container as root } from 'tsyringe';
import { VmConfigSchema } from '../../core/config/schema.js';
import { VmLifecycle } from '../../core/lifecycle.js';
import { BackendGuestMemoryFactory } from '../../core/memory/factory.js';
import { silentLogger } from '../../core/testing/index.js';
import { Tokens } from '../../core/tokens.js';
import { X86ConfigSchema } from './config.js';
import { registerX86 } from './plugin.js';
import { fakeBzImage } from './testing.js';

describe('x86 plugin: machine.memoryPath', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'x86-plugin-'));
    writeFileSync(join(dir, 'bzImage'), fakeBzImage());
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves a relative memoryPath against the YAML file folder, not the working directory', async () => {
    const vm = VmConfigSchema.parse({
      machine: { memory: '4M', memoryBackend: 'file', memoryPath: 'ram.bin' },
      boot: { kernel: 'bzImage' },
    });
    const c = root.createChildContainer();
    c.register(Tokens.VmConfig.token, { useValue: vm });
    c.register(Tokens.GuestMemoryFactory.token, { useValue: new BackendGuestMemoryFactory() });
    const ctx = {
      config: X86ConfigSchema.parse({}),
      vm,
      logger: silentLogger(),
      lifecycle: new VmLifecycle(),
      baseDir: dir,
      instance: 'x86',
    };
    const disposables = await registerX86(c, ctx);
    try {
      expect(statSync(join(dir, 'ram.bin')).size).to.equal(4 << 20);
      expect(existsSync(join(process.cwd(), 'ram.bin'))).to.equal(false);
    } finally {
      for (const d of disposables) await d.dispose();
    }
  });
});
