import 'reflect-metadata';
import type { DependencyContainer } from 'tsyringe';
import type { PluginContext } from '../../core/plugin/plugin.js';
import type { X86Config } from './config.js';
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
import { pluginContext, registerPluginInstance } from '../../core/plugin/instance.js';
import { X86ConfigSchema } from './config.js';
import plugin, { X86Platform } from './plugin.js';
import { RangeBus } from '../../core/bus/range-bus.js';
import type { Interrupts, LegacyIrq, LegacyIrqOptions } from '../../core/interrupts/interrupts.js';
import { PM1_EVT } from './platform/pm.js';
import { fakeBzImage } from './testing.js';
import { X86BootError } from './errors.js';
import { AcpiTableSet } from '../acpi/table-set.js';
import { madtEntries, readTables } from '../acpi/testing.js';
import { ACPI_START, FADT_FLAG, MADT_TYPE, PM1_EVT_PORT, SCI_IRQ } from './platform/acpi.js';

/** Registers x86 the way the kernel does (its own scope, register, then main attached). */
const registerX86 = (c: DependencyContainer, ctx: PluginContext<X86Config>) => registerPluginInstance(c, plugin, ctx);
describe('x86 plugin', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'x86-plugin-'));
    writeFileSync(join(dir, 'bzImage'), fakeBzImage());
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A child container with the tokens x86 requires, a file-backed 4 MiB guest at `ram.bin`, and x86's context. */
  const setup = (x86: unknown, vcpus = 1) => {
    const vm = VmConfigSchema.parse({
      machine: { memory: '4M', vcpus, memoryBackend: 'file', memoryPath: 'ram.bin' },
      boot: { kernel: 'bzImage' },
    });
    const c = root.createChildContainer();
    c.register(Tokens.VmConfig.token, { useValue: vm });
    c.register(Tokens.GuestMemoryFactory.token, { useValue: new BackendGuestMemoryFactory() });
    const ctx = pluginContext(c, {
      config: X86ConfigSchema.parse(x86),
      vm,
      logger: silentLogger(),
      lifecycle: new VmLifecycle(),
      baseDir: dir,
      instance: 'x86',
    });
    return { c, ctx };
  };

  it('resolves a relative memoryPath against the YAML file folder, not the working directory', async () => {
    const { c, ctx } = setup({ acpi: false });
    const disposables = await registerX86(c, ctx);
    try {
      expect(statSync(join(dir, 'ram.bin')).size).to.equal(4 << 20);
      expect(existsSync(join(process.cwd(), 'ram.bin'))).to.equal(false);
    } finally {
      for (const d of disposables) await d.dispose();
    }
  });

  it('refuses acpi (the default) without the acpi plugin, naming the fix, before creating guest memory', async () => {
    const { c, ctx } = setup({});
    let err: unknown;
    await registerX86(c, ctx).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(X86BootError);
    expect((err as Error).message)
      .to.include("add '- name: acpi' to plugins")
      .and.include("'acpi: false'");
    expect(existsSync(join(dir, 'ram.bin'))).to.equal(false);
  });

  it("contributes the MADT for the VM's vCPUs and FADT fields; disposing takes the contribution back", async () => {
    const { c, ctx } = setup({}, 3);
    const tables = new AcpiTableSet();
    c.register(Tokens.AcpiTables.token, { useValue: tables });
    const disposables = await registerX86(c, ctx);
    const built = readTables(tables.build(ACPI_START));
    const cpus = madtEntries(built.get('APIC')!).filter((e) => e[0] === MADT_TYPE.LAPIC);
    expect(cpus).to.have.length(3);
    expect(new DataView(built.get('FACP')!.buffer, built.get('FACP')!.byteOffset).getUint16(46, true)).to.equal(9);
    for (const d of disposables) await d.dispose();
    expect(readTables(tables.build(ACPI_START)).has('APIC')).to.equal(false);
  });

  it('powerButton: the FADT announces a fixed power button; a press the guest enabled pulses the SCI line', async () => {
    const { ctx } = setup({ powerButton: true });
    const tables = new AcpiTableSet();
    const bus = new RangeBus(silentLogger());
    const lines: (LegacyIrqOptions & { triggers: number; disposed: boolean })[] = [];
    const interrupts = {
      legacy(opts: LegacyIrqOptions): LegacyIrq {
        const line = { ...opts, triggers: 0, disposed: false };
        lines.push(line);
        return {
          owner: opts.owner,
          mode: opts.mode ?? 'edge',
          gsi: Number(opts.line),
          notifier: undefined,
          trigger: () => void line.triggers++,
          setLevel: () => {},
          onResample: () => ({ dispose() {} }),
          dispose: () => void (line.disposed = true),
        };
      },
    } as Interrupts;
    const p = new X86Platform(
      ctx.config,
      ctx,
      silentLogger(),
      ctx.vm,
      new BackendGuestMemoryFactory(),
      bus,
      tables,
      undefined,
      undefined,
      interrupts,
    );
    const disposables = await p.attach();
    try {
      const fadt = readTables(tables.build(ACPI_START)).get('FACP')!;
      const flags = new DataView(fadt.buffer, fadt.byteOffset).getUint32(112, true);
      expect(flags & FADT_FLAG.PWR_BUTTON).to.equal(0, 'PWR_BUTTON clear: a fixed-feature button exists');
      expect(lines.map((l) => [l.owner, l.line, l.mode])).to.deep.equal([['acpi-sci', SCI_IRQ, 'edge']]);
      expect(p.pressPowerButton()).to.equal(false, 'the guest has not enabled the event');
      bus.write('pio', BigInt(PM1_EVT_PORT), Uint8Array.of(0, PM1_EVT.PWRBTN >> 8)); // clear the stale status
      bus.write('pio', BigInt(PM1_EVT_PORT + 2), Uint8Array.of(0, PM1_EVT.PWRBTN >> 8)); // PWRBTN_EN
      expect(lines[0].triggers).to.equal(0);
      expect(p.pressPowerButton()).to.equal(true);
      expect(lines[0].triggers).to.equal(1);
    } finally {
      for (const d of disposables.reverse()) await d.dispose();
    }
    expect(lines[0].disposed).to.equal(true);
    // without the option: the FADT says "no fixed power button" and there is nothing to press
    const off = setup({});
    const offTables = new AcpiTableSet();
    off.c.register(Tokens.AcpiTables.token, { useValue: offTables });
    off.c.register(Tokens.Bus.token, { useValue: new RangeBus(silentLogger()) });
    const d2 = await registerX86(off.c, off.ctx);
    const fadt2 = readTables(offTables.build(ACPI_START)).get('FACP')!;
    expect(new DataView(fadt2.buffer, fadt2.byteOffset).getUint32(112, true) & FADT_FLAG.PWR_BUTTON).to.not.equal(0);
    for (const d of d2.reverse()) await d.dispose();
  });
});
