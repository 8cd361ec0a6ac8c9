import { expect } from 'chai';
import { skipUnlessCi } from '../../test/setup/environment.js';
import * as aml from './aml/index.js';
import { AcpiError } from './errors.js';
import { FADT_FLAGS } from './fadt.js';
import { AcpiTableSet } from './table-set.js';
import { IASL, disassembleFields, madtEntries, readTables } from './testing.js';

const text = (b: Uint8Array): string => String.fromCharCode(...b);
const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

describe('ACPI table set', () => {
  it('with no contribution builds RSDP, XSDT, a hardware-reduced FADT and an empty DSDT, no MADT', () => {
    const t = new AcpiTableSet().build(0xe0000n);
    expect(t.rsdp).to.equal(0xe0000n);
    const tables = readTables(t);
    expect([...tables.keys()]).to.deep.equal(['FACP', 'DSDT']);
    const fadt = tables.get('FACP')!;
    expect([fadt.length, fadt[8]]).to.deep.equal([276, 6]);
    expect(view(fadt).getUint32(112, true) & FADT_FLAGS.HW_REDUCED_ACPI).to.not.equal(0);
    expect(tables.get('DSDT')!.length).to.equal(36);
  });

  it('concatenates DSDT contributions in the order added; a disposed one is left out', () => {
    const set = new AcpiTableSet();
    set.contribute({ source: 'a', dsdt: () => aml.name('\\AAAA', 1) });
    const b = set.contribute({ source: 'b', dsdt: () => aml.name('\\BBBB', 2) });
    set.contribute({ source: 'c', dsdt: () => aml.name('\\CCCC', 3) });
    const body = (): string => text(readTables(set.build(0x1000n)).get('DSDT')!.subarray(36));
    expect(body()).to.match(/AAAA.*BBBB.*CCCC/s);
    b.dispose();
    expect(body())
      .to.match(/AAAA.*CCCC/s)
      .and.not.include('BBBB');
  });

  it('builds the MADT from the header and entries contributed, in order, and lists extra tables in the XSDT', () => {
    const set = new AcpiTableSet();
    set.contribute({
      source: 'platform',
      madt: () => ({
        header: { localInterruptController: 0xfee00000, flags: 1 },
        entries: [Uint8Array.of(0, 8, 0, 0, 1, 0, 0, 0)],
      }),
    });
    set.contribute({ source: 'more', madt: () => ({ entries: [Uint8Array.of(4, 6, 0xff, 0, 0, 1)] }) });
    set.contribute({ source: 'pci', tables: () => [{ signature: 'MCFG', revision: 1, body: new Uint8Array(8 + 16) }] });
    const tables = readTables(set.build(0x1000n));
    expect([...tables.keys()]).to.deep.equal(['FACP', 'APIC', 'MCFG', 'DSDT']);
    const madt = tables.get('APIC')!;
    expect([view(madt).getUint32(36, true), view(madt).getUint32(40, true)]).to.deep.equal([0xfee00000, 1]);
    expect(madtEntries(madt).map((e) => [...e])).to.deep.equal([
      [0, 8, 0, 0, 1, 0, 0, 0],
      [4, 6, 0xff, 0, 0, 1],
    ]);
  });

  it('merges FADT fields from several contributions; a full FADT when a PM1a control block is named', () => {
    const set = new AcpiTableSet();
    set.contribute({
      source: 'pm',
      fadt: () => ({ pm1aEvent: { port: 0x600, length: 4 }, pm1aControl: { port: 0x604, length: 2 } }),
    });
    set.contribute({ source: 'sci', fadt: () => ({ sciInterrupt: 9, flags: FADT_FLAGS.WBINVD }) });
    set.contribute({ source: 'same', fadt: () => ({ sciInterrupt: 9 }) });
    const f = view(readTables(set.build(0x1000n)).get('FACP')!);
    expect([
      f.getUint16(46, true),
      f.getUint32(56, true),
      f.getUint8(88),
      f.getUint32(64, true),
      f.getUint8(89),
    ]).to.deep.equal([9, 0x600, 4, 0x604, 2]);
    expect(f.getUint32(112, true)).to.equal(FADT_FLAGS.WBINVD);
  });

  it('refuses contributions that disagree, a bad MADT entry, a bad signature, a throwing contribution, an unaligned base', () => {
    const clash = new AcpiTableSet();
    clash.contribute({ source: 'x86', fadt: () => ({ sciInterrupt: 9 }) });
    clash.contribute({ source: 'other', fadt: () => ({ sciInterrupt: 10 }) });
    expect(() => clash.build(0n))
      .to.throw(AcpiError, /FADT field sciInterrupt: 'x86' sets 9, 'other' sets 10/)
      .with.property('kind', 'Contribution');
    const madt = new AcpiTableSet();
    madt.contribute({ source: 'x', madt: () => ({ entries: [Uint8Array.of(0, 9, 0)] }) });
    expect(() => madt.build(0n)).to.throw(AcpiError, /MADT entry 0/);
    const sig = new AcpiTableSet();
    sig.contribute({ source: 'x', tables: () => [{ signature: 'mcfg!', revision: 1, body: new Uint8Array() }] });
    expect(() => sig.build(0n)).to.throw(AcpiError, /signature/);
    const boom = new AcpiTableSet();
    boom.contribute({
      source: 'virtio-mmio',
      dsdt: () => {
        throw new Error('no window');
      },
    });
    expect(() => boom.build(0n)).to.throw(AcpiError, "the ACPI contribution of 'virtio-mmio' failed: no window");
    expect(() => new AcpiTableSet().build(8n))
      .to.throw(AcpiError)
      .with.property('kind', 'Layout');
  });

  describe('read back by ACPICA (iasl -d)', function () {
    this.timeout(60_000);
    before(function () {
      if (!IASL) skipUnlessCi(this, 'iasl is not installed (Debian acpica-tools)');
    });

    it('decodes the FADT fields and the MADT entries as contributed', () => {
      const set = new AcpiTableSet();
      set.contribute({
        source: 'platform',
        fadt: () => ({
          sciInterrupt: 9,
          pm1aEvent: { port: 0x600, length: 4 },
          pm1aControl: { port: 0x604, length: 2 },
          century: 0x32,
          iapcBootArch: 0x2,
          flags: FADT_FLAGS.PWR_BUTTON,
        }),
        madt: () => ({
          header: { localInterruptController: 0xfee00000 },
          entries: [Uint8Array.of(0, 8, 0, 3, 1, 0, 0, 0)],
        }),
      });
      const tables = readTables(set.build(0xe0000n));
      const fadt = disassembleFields(tables.get('FACP')!);
      for (const line of [
        'SCI Interrupt : 0009',
        'PM1A Event Block Address : 00000600',
        'PM1A Control Block Address : 00000604',
        'PM1 Event Block Length : 04',
        'RTC Century Index : 32',
        '8042 Present on ports 60/64 (V2) : 1',
        'Power Button (V1) : 1',
        'Hardware Reduced (V5) : 0',
      ])
        expect(fadt).to.include(line);
      const madt = disassembleFields(tables.get('APIC')!);
      expect(madt).to.include('Local Apic Address : FEE00000');
      expect(madt).to.include('Local Apic ID : 03');
    });
  });
});
