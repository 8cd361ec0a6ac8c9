import { expect } from 'chai';
import { landmark, longestGaps, parseKernelLog, slowerInitcalls } from './initcalls.js';

const log = (lines: string[]): string => lines.map((l) => `${l}\r`).join('\n');

describe('bench initcalls: two kernel logs lined up', () => {
  const ours = parseKernelLog(
    log([
      'TSVMM-RESULT-BEGIN',
      '[    0.000000] Linux version 6.1.0',
      '[    0.120000] tsc: Refined TSC clocksource calibration: 2445.406 MHz',
      '[    0.900000] initcall i8042_init+0x0/0x3e8 returned 0 after 700000 usecs',
      '[    1.000000] initcall serial8250_init+0x0/0x1b0 returned 0 after 90000 usecs',
      '[    1.500000] Run /init as init process',
    ]),
  );
  const qemu = parseKernelLog(
    log([
      '[    0.000000] Linux version 6.1.0',
      '[    0.100000] initcall i8042_init+0x0/0x3e8 returned 0 after 2000 usecs',
      '[    0.200000] initcall serial8250_init+0x0/0x1b0 returned 0 after 95000 usecs',
      '[    0.300000] initcall virtio_mmio_init+0x0/0x20 [virtio_mmio] returned 0 after 800 usecs',
      '[    0.400000] Run /init as init process',
    ]),
  );

  it('reads times, initcalls (module ones too) and landmarks; other console lines are ignored', () => {
    expect(ours.lines).to.have.length(5);
    expect(ours.initcalls.get('i8042_init')).to.equal(700000);
    expect(qemu.initcalls.get('virtio_mmio_init')).to.equal(800);
    expect(landmark(ours, 'Run /init')).to.equal(1.5);
    expect(landmark(qemu, 'tsc: Refined')).to.equal(undefined);
  });

  it('puts the initcall that waited longest under ours first; the longest gap names the lines around it', () => {
    const s = slowerInitcalls(ours, qemu, 3);
    // virtio_mmio_init is missing from ours' log (under 500 µs there): 0 µs, 0.8 ms less than QEMU's
    expect(s.map((x) => x.name)).to.deep.equal(['i8042_init', 'virtio_mmio_init', 'serial8250_init']);
    expect(s[0]).to.include({ ours: 700000, peer: 2000 });
    const g = longestGaps(ours, 1)[0];
    expect(g.s).to.be.closeTo(0.78, 1e-9);
    expect(g.after).to.contain('tsc: Refined');
    expect(g.before).to.contain('i8042_init');
  });
});
