import { expect } from 'chai';
import * as aml from '../acpi/aml/index.js';
import { IASL, disassembleAml, normalizeAsl } from '../acpi/testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';
import { hotplugAml } from './aml.js';

describe('pci-hotplug DSDT part, read back by ACPICA (iasl -d)', function () {
  this.timeout(60_000);
  before(function () {
    if (!IASL) skipUnlessCi(this, 'iasl is not installed (Debian acpica-tools)');
  });

  it('controller, GED, PCNT and 31 ejectable slots under the host bridge', () => {
    const bridge = aml.scope('\\_SB', [aml.device('PCI0', [aml.name('_HID', aml.eisaId('PNP0A08'))])]);
    const asl = disassembleAml(aml.concat([bridge, hotplugAml({ base: 0xd000_1000n, gsi: 5, bridge: '\\_SB.PCI0' })]));
    const has = (s: string): void => void expect(asl, s).to.include(normalizeAsl(s));
    has('Name (_HID, EisaId ("PNP0C02"))');
    has('Memory32Fixed (ReadWrite, 0xD0001000, 0x00000010, )');
    has('OperationRegion (PCST, SystemMemory, 0xD0001000, 0x10)');
    has('Field (PCST, DWordAcc, NoLock, WriteAsZeros) { PCIU, 32, PCID, 32, B0EJ, 32, PSEG, 32 }');
    has('Method (PCEJ, 1, NotSerialized) { Acquire (\\_SB.PHPR.BLCK, 0xFFFF) PSEG = Zero B0EJ = (One << Arg0)');
    has('Method (PSCN, 0, NotSerialized) { Acquire (\\_SB.PHPR.BLCK, 0xFFFF) PSEG = Zero \\_SB.PCI0.PCNT ()');
    has('Device (PGED) { Name (_HID, "ACPI0013") Name (_UID, Zero)');
    has('Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { 0x00000005, }');
    has('Method (_EVT, 1, Serialized) { \\_SB.PHPR.PSCN () }');
    has('Local0 = \\_SB.PHPR.PCIU Local1 = \\_SB.PHPR.PCID');
    has('If ((Local0 & 0x02)) { Notify (S01, One) } If ((Local1 & 0x02)) { Notify (S01, 0x03) }');
    has('If ((Local1 & 0x80000000)) { Notify (S1F, 0x03) }');
    has(
      'Device (S1F) { Name (_ADR, 0x001F0000) Name (_SUN, 0x1F) Method (_EJ0, 1, NotSerialized) { \\_SB.PHPR.PCEJ (0x1F) } }',
    );
    expect(asl.match(/Device\(S[0-9A-F]{2}\)/g)).to.have.length(31);
  });
});
