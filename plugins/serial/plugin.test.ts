import { expect } from 'chai';
import plugin from './plugin.js';
import { SerialConfigSchema } from './config.js';
import { createLegacyTestBed } from './testing.js';
import { Ier, Reg } from './registers.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';

const cfg = (c: unknown) => SerialConfigSchema.parse(c);

describe('serial: plugin', () => {
  it('registers COM1 at 0x3f8 on IRQ 4 (Resources, Interrupts) and drives the line as a level', async () => {
    const bed = createLegacyTestBed();
    const disposables =
      (await registerPluginInstance(
        bed.container,
        plugin,
        bed.context('serial', cfg({ console: { kind: 'none' } })),
      )) ?? [];
    const reg = bed.bus.find('pio', 0x3f8n);
    expect(reg?.name).to.equal('serial');
    expect(bed.bus.find('pio', 0x3ffn)?.name).to.equal('serial');
    expect(bed.bus.find('pio', 0x400n)).to.equal(undefined);
    expect(bed.registry.get('serial')).to.not.equal(undefined);
    expect(() => bed.resources.reserve('irq', 4n, { owner: 'other' })).to.throw(/IRQ 4 wanted by 'other' .* 'serial'/);
    expect(() => bed.resources.reserve('pio', 0x3fcn, { owner: 'other' })).to.throw(/held by 'serial'/);

    bed.bus.write('pio', 0x3f8n + BigInt(Reg.IER), Uint8Array.of(Ier.THRI));
    expect(bed.vm.irqCalls).to.deep.equal([{ gsi: 4, level: true }]);
    const iir = new Uint8Array(1);
    bed.bus.read('pio', 0x3f8n + BigInt(Reg.IIR_FCR), iir);
    expect(bed.vm.irqCalls.at(-1)).to.deep.equal({ gsi: 4, level: false });

    for (const d of disposables) d.dispose();
    expect(bed.bus.find('pio', 0x3f8n)).to.equal(undefined);
    expect(bed.interrupts.legacy({ owner: 'next', line: 4 }).gsi, 'the line is free again').to.equal(4);
    expect(bed.resources.reserve('pio', 0x3f8n, { owner: 'next', size: 8n }).owner).to.equal('next');
  });

  it("with mmio, sits on the MMIO bus at that address (machines without port I/O) on the port's line", async () => {
    const bed = createLegacyTestBed();
    const at = Number(bed.resources.layout.spaces.mmio32.alloc.start) + 0x10000;
    const disposables =
      (await registerPluginInstance(
        bed.container,
        plugin,
        bed.context('serial', cfg({ mmio: at, console: { kind: 'none' } })),
      )) ?? [];
    expect(bed.bus.find('pio', 0x3f8n)).to.equal(undefined);
    expect(bed.bus.find('mmio', BigInt(at))?.name).to.equal('serial');
    expect(bed.bus.find('mmio', BigInt(at) + 7n)?.name).to.equal('serial');
    expect(() => bed.resources.reserve('mmio32', BigInt(at), { owner: 'other' })).to.throw(/held by 'serial'/);
    bed.bus.write('mmio', BigInt(at) + BigInt(Reg.IER), Uint8Array.of(Ier.THRI));
    expect(bed.vm.irqCalls).to.deep.equal([{ gsi: 4, level: true }]);
    for (const d of disposables) d.dispose();
    expect(bed.bus.find('mmio', BigInt(at))).to.equal(undefined);
  });

  it('places COM2 at 0x2f8 on IRQ 3, and an explicit irq overrides', async () => {
    const bed = createLegacyTestBed();
    await registerPluginInstance(
      bed.container,
      plugin,
      bed.context('com2', cfg({ port: 'COM2', console: { kind: 'none' } })),
    );
    await registerPluginInstance(
      bed.container,
      plugin,
      bed.context('com3', cfg({ port: 'COM3', irq: 6, console: { kind: 'none' } })),
    );
    expect(bed.bus.find('pio', 0x2f8n)?.name).to.equal('com2');
    expect(bed.bus.find('pio', 0x3e8n)?.name).to.equal('com3');
    const holder = (n: number) => bed.resources.allocations('irq').find((a) => a.number === n)?.owner;
    expect(holder(3)).to.equal('com2');
    expect(holder(6)).to.equal('com3');
  });

  it('fails clearly when two ports want the same IRQ', async () => {
    const bed = createLegacyTestBed();
    await registerPluginInstance(bed.container, plugin, bed.context('com1', cfg({ console: { kind: 'none' } })));
    let err: Error | undefined;
    try {
      await registerPluginInstance(
        bed.container,
        plugin,
        bed.context('com3', cfg({ port: 'COM3', console: { kind: 'none' } })),
      );
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/IRQ 4 wanted by 'com3' overlaps IRQ 4 held by 'com1'/);
    expect(bed.resources.reserve('pio', 0x3e8n, { owner: 'x', size: 8n }).owner, 'COM3 ports given back').to.equal('x');
  });

  it('rejects unknown config keys and backends', () => {
    expect(SerialConfigSchema.safeParse({ prot: 'COM1' }).success).to.equal(false);
    expect(SerialConfigSchema.safeParse({ console: { kind: 'tcp' } }).success).to.equal(false);
    expect(SerialConfigSchema.safeParse({ console: { kind: 'file' } }).success, 'file needs a path').to.equal(false);
    expect(SerialConfigSchema.parse({}).console).to.deep.equal({ kind: 'stdio' });
  });

  it('activates the console when the VM starts and closes it when the VM is torn down', async () => {
    const bed = createLegacyTestBed();
    const disposables = await registerPluginInstance(
      bed.container,
      plugin,
      bed.context('serial', cfg({ console: { kind: 'none' } })),
    );
    const dev = bed.registry.get('serial') as unknown as {
      activate(): void;
      destroy(): void;
      receive(b: Uint8Array): number;
    };
    bed.lifecycle.emit('started');
    expect(dev.receive(Uint8Array.of(1))).to.equal(1);
    for (const d of disposables.reverse()) await d.dispose();
    expect(dev.receive(Uint8Array.of(1))).to.equal(0);
    expect(bed.registry.all(), 'removed from the registry').to.deep.equal([]);
    bed.lifecycle.emit('started');
    expect(dev.receive(Uint8Array.of(1)), 'no longer activated by a later start').to.equal(0);
  });
});
