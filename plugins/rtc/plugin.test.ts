import { expect } from 'chai';
import plugin from './plugin.js';
import { createLegacyTestBed } from '../serial/testing.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';

describe('rtc: plugin', () => {
  it('registers ports 0x70-0x71 and answers through the bus without claiming IRQ 8', async () => {
    const bed = createLegacyTestBed();
    const disposables = (await registerPluginInstance(bed.container, plugin, bed.context('rtc', {}))) ?? [];
    expect(bed.bus.find('pio', 0x70n)?.name).to.equal('rtc');
    expect(bed.bus.find('pio', 0x71n)?.name).to.equal('rtc');
    expect(bed.bus.find('pio', 0x72n)).to.equal(undefined);
    expect(bed.resources.allocations('irq').map((a) => `${a.number}:${a.owner}`)).to.deep.equal(['8:reserved']);
    expect(() => bed.resources.reserve('pio', 0x71n, { owner: 'x' })).to.throw(/held by 'rtc'/);
    bed.bus.write('pio', 0x70n, Uint8Array.of(0x0d));
    const d = new Uint8Array(1);
    bed.bus.read('pio', 0x71n, d);
    expect(d[0]).to.equal(0x80);
    expect(bed.registry.get('rtc')).to.not.equal(undefined);
    for (const x of disposables.reverse()) await x.dispose();
    expect(bed.registry.all()).to.deep.equal([]);
    expect(bed.bus.find('pio', 0x70n)).to.equal(undefined);
    expect(bed.resources.allocations('pio')).to.deep.equal([]);
  });
});
