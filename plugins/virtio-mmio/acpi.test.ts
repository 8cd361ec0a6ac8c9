import { expect } from 'chai';
import { IASL, disassembleAml, normalizeAsl } from '../acpi/testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';
import { VirtioMmioError } from './errors.js';
import { virtioMmioDsdt } from './acpi.js';

describe('virtio-mmio DSDT nodes, read back by ACPICA (iasl -d)', function () {
  this.timeout(60_000);
  before(function () {
    if (!IASL) skipUnlessCi(this, 'iasl is not installed (Debian acpica-tools)');
  });

  it('describes each window as an LNRO0005 device with its memory and interrupt', () => {
    const asl = disassembleAml(
      virtioMmioDsdt([
        { base: 0xd0001000n, size: 0x1000n, gsi: 5 },
        { base: 0xd0002000n, size: 0x1000n, gsi: 6 },
      ]),
    );
    const node = (i: number, base: string, gsi: string): string =>
      `Device (VR0${i}) { Name (_HID, "LNRO0005") Name (_UID, ${i === 0 ? 'Zero' : 'One'})
        Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, ${base}, 0x00001000, )
        Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { ${gsi}, } }) }`;
    expect(asl).to.equal(
      normalizeAsl(`Scope (\\_SB) { ${node(0, '0xD0001000', '0x00000005')} ${node(1, '0xD0002000', '0x00000006')} }`),
    );
  });

  it('keeps a valid AML stream with many devices (multi-byte package lengths); refuses more than 256', () => {
    const windows = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        base: 0xd0001000n + BigInt(i) * 0x1000n,
        size: 0x1000n,
        gsi: 5 + (i % 18),
      }));
    const asl = disassembleAml(virtioMmioDsdt(windows(256)));
    expect(asl.match(/"LNRO0005"/g)).to.have.length(256);
    expect(asl).to.include('Device(VRFF)');
    expect(virtioMmioDsdt([])).to.have.length(0);
    expect(() => virtioMmioDsdt(windows(257))).to.throw(VirtioMmioError, /at most 256/);
  });
});
