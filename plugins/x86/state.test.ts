import { expect } from 'chai';
import { StateError } from '../../core/state/errors.js';
import { restoreSnapshot, takeSnapshot } from '../../core/state/persist.js';
import { hostileStateProblems, roundTripState, withData } from '../../core/testing/state.js';
import { Pm1Registers } from './platform/pm.js';
import { MachineSnapshot, type MachineShape } from './state.js';

const SHAPE: MachineShape = { vcpus: 2, memoryBytes: 256n << 20n, acpi: true };

describe('x86 machine: state', () => {
  it('round-trips shape and boot; a restored machine knows its guest booted', () => {
    let booted: 'bzimage' | 'pvh' | undefined = 'pvh';
    const a = new MachineSnapshot(SHAPE, () => booted);
    const b = new MachineSnapshot(SHAPE, () => undefined);
    expect(b.restoredBoot).to.equal(undefined);
    const { first, second } = roundTripState(a, b);
    expect(second).to.deep.equal(first);
    expect(first).to.deep.equal({
      id: 'machine',
      version: 1,
      data: { vcpus: 2, memoryBytes: '268435456', acpi: true, booted: true, protocol: 'pvh' },
    });
    expect(b.restoredBoot).to.equal('pvh');
    booted = undefined;
    const c = new MachineSnapshot(SHAPE, () => undefined);
    restoreSnapshot(c, takeSnapshot(a));
    expect(c.restoredBoot, 'a machine saved before boot boots as usual').to.equal(undefined);
  });

  it("keeps the PM1 registers: a restored guest's power button still reaches it", () => {
    const pm = (): Pm1Registers => new Pm1Registers(() => {});
    const a = new MachineSnapshot(SHAPE, () => 'pvh');
    const regs = pm();
    a.pm1 = regs;
    regs.bus.write(2n, Uint8Array.of(0, 1)); // the guest enables PWRBTN_EN
    const b = new MachineSnapshot(SHAPE, () => undefined);
    const fresh = pm();
    b.pm1 = fresh;
    roundTripState(a, b);
    expect(fresh.pressPowerButton(), 'the restored guest listens to its power button').to.equal(true);
  });

  it('refuses a state of another shape, and hostile ones', () => {
    const saved = takeSnapshot(new MachineSnapshot(SHAPE, () => 'bzimage'));
    expect(() => restoreSnapshot(new MachineSnapshot({ ...SHAPE, vcpus: 1 }, () => undefined), saved)).to.throw(
      StateError,
      'machine: saved x86 machine state does not fit: it was saved with 2 vCPUs, this machine has 1',
    );
    const m = new MachineSnapshot(SHAPE, () => undefined);
    expect(
      hostileStateProblems(m, [
        withData(saved, (d) => ({ ...d, memoryBytes: '134217728' })),
        withData(saved, (d) => ({ ...d, acpi: false })),
        withData(saved, (d) => ({ ...d, booted: true, protocol: null })),
        withData(saved, (d) => ({ ...d, booted: false, protocol: 'pvh' })),
        withData(saved, (d) => ({ ...d, protocol: 'elf' })),
        withData(saved, (d) => ({ ...d, vcpus: 0 })),
        withData(saved, (d) => ({ ...d, vcpus: 255 })),
        withData(saved, (d) => ({ ...d, memoryBytes: 268435456 })),
      ]),
    ).to.deep.equal([]);
    expect(m.restoredBoot).to.equal(undefined);
  });
});
