import { expect } from 'chai';
import type { StopReason } from '../../core/lifecycle.js';
import plugin from './plugin.js';
import { createLegacyTestBed } from '../serial/testing.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';

describe('i8042: plugin', () => {
  it('registers ports 0x60 and 0x64, claims IRQ 1, and turns 0xFE into a reset guest-request', async () => {
    const bed = createLegacyTestBed();
    const disposables = (await registerPluginInstance(bed.container, plugin, bed.context('i8042', {}))) ?? [];
    expect(bed.bus.find('pio', 0x60n)?.name).to.equal('i8042-data');
    expect(bed.bus.find('pio', 0x64n)?.name).to.equal('i8042-command');
    expect(bed.bus.find('pio', 0x61n), '0x61 belongs to the PIT/speaker').to.equal(undefined);
    expect(bed.resources.allocations('irq').find((a) => a.number === 1)?.owner).to.equal('i8042');
    expect(bed.resources.allocations('pio').map((a) => a.owner)).to.deep.equal(['i8042-data', 'i8042-command']);

    const requests: StopReason[] = [];
    bed.lifecycle.on('guest-request', (r) => requests.push(r));
    bed.bus.write('pio', 0x64n, Uint8Array.of(0xfe));
    expect(requests).to.deep.equal([{ kind: 'reset' }]);

    bed.bus.write('pio', 0x60n, Uint8Array.of(0xf2));
    expect(bed.vm.irqCalls[0]).to.deep.equal({ gsi: 1, level: true });

    expect(bed.registry.get('i8042')).to.not.equal(undefined);
    for (const d of disposables.reverse()) await d.dispose();
    expect(bed.registry.all()).to.deep.equal([]);
    expect(bed.bus.find('pio', 0x64n)).to.equal(undefined);
    expect(bed.resources.allocations('pio')).to.deep.equal([]);
    expect(bed.resources.allocations('irq').map((a) => a.number)).to.deep.equal([8]);
  });
});
