import { expect } from 'chai';
import { X86Layout } from '../x86/layout.js';
import plugin, { BOOT_TIMER } from './plugin.js';
import { createLegacyTestBed } from '../serial/testing.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';

describe('boot-timer: plugin', () => {
  it('maps the marker page at 0xd0000000 and reports through the BootTimer token and the logger', async () => {
    const bed = createLegacyTestBed();
    const disposables = (await registerPluginInstance(bed.container, plugin, bed.context('boot-timer', {}))) ?? [];
    expect(bed.bus.find('mmio', X86Layout.BOOT_TIMER)?.name).to.equal('boot-timer');
    expect(bed.bus.find('mmio', X86Layout.BOOT_TIMER + 0xfffn)?.name).to.equal('boot-timer');
    expect(bed.bus.find('mmio', X86Layout.MMIO_ALLOC_START)).to.equal(undefined);
    const reporter = bed.container.resolve(BOOT_TIMER);
    bed.lifecycle.emit('started');
    const booted = reporter.whenBooted();
    bed.bus.write('mmio', 0xd000_0000n, Uint8Array.of(123));
    const t = await booted;
    expect(t.ms).to.be.a('number').and.to.be.at.least(0);
    expect(t.sinceStartedMs).to.be.a('number');
    expect(bed.logger.messages('info').filter((m) => /^guest boot completed in [\d.]+ ms$/.test(m))).to.have.length(1);
    for (const d of disposables) d.dispose();
    expect(bed.bus.find('mmio', X86Layout.BOOT_TIMER)).to.equal(undefined);
  });
});
