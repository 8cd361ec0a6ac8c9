import { expect } from 'chai';
import { AcpiTableSet } from '../../acpi/table-set.js';
import { IASL, disassembleAml, disassembleFields, normalizeAsl, readTables } from '../../acpi/testing.js';
import { skipUnlessCi } from '../../../test/setup/environment.js';
import { ACPI_START, x86AcpiContribution, x86Dsdt } from './acpi.js';

describe("x86's ACPI contribution, read back by ACPICA (iasl -d)", function () {
  this.timeout(60_000);
  before(function () {
    if (!IASL) skipUnlessCi(this, 'iasl is not installed (Debian acpica-tools)');
  });

  it('puts \\_S5 and a PNP0C02 device claiming GSIs 16..23 into the DSDT', () => {
    expect(disassembleAml(x86Dsdt())).to.equal(
      normalizeAsl(`Name (\\_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })
        Scope (\\_SB) { Device (GSIS) { Name (_HID, EisaId ("PNP0C02")) Name (_UID, Zero)
          Name (_CRS, ResourceTemplate () { Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )
            { 0x00000010, 0x00000011, 0x00000012, 0x00000013, 0x00000014, 0x00000015, 0x00000016, 0x00000017, } }) } }`),
    );
  });

  it('describes 2 CPUs, the IOAPIC, the SCI override and LINT1 in the MADT as ACPICA decodes it', () => {
    const set = new AcpiTableSet();
    set.contribute(x86AcpiContribution(2));
    const madt = disassembleFields(readTables(set.build(ACPI_START)).get('APIC')!);
    for (const line of [
      'Local Apic Address : FEE00000',
      'PC-AT Compatibility : 1',
      'Subtable Type : 00 [Processor Local APIC] Length : 08 Processor ID : 00 Local Apic ID : 00',
      'Subtable Type : 00 [Processor Local APIC] Length : 08 Processor ID : 01 Local Apic ID : 01',
      'Subtable Type : 01 [I/O APIC] Length : 0C I/O Apic ID : 02 Reserved : 00 Address : FEC00000 Interrupt : 00000000',
      'Subtable Type : 02 [Interrupt Source Override] Length : 0A Bus : 00 Source : 09 Interrupt : 00000009 ' +
        'Flags (decoded below) : 0005 Polarity : 1 Trigger Mode : 1',
      'Subtable Type : 04 [Local APIC NMI] Length : 06 Processor ID : FF',
      'Interrupt Input LINT : 01',
    ])
      expect(madt).to.include(line);
  });
});
