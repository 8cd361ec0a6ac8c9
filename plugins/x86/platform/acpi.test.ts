import { expect } from 'chai';
import { GuestAddress } from '../../../core/address.js';
import { X86Layout } from '../layout.js';
import { testGuestMemory } from '../../../core/testing/test-memory.js';
import { X86BootError } from '../errors.js';
import { AcpiTableSet } from '../../acpi/table-set.js';
import { FADT_FLAGS } from '../../acpi/fadt.js';
import {
  ACPI_START,
  IAPC_BOOT_ARCH,
  INTI_EDGE_HIGH,
  MADT_TYPE,
  PM1_CNT_PORT,
  PM1_EVT_PORT,
  SCI_IRQ,
  S5_SLP_TYP,
  x86AcpiContribution,
  x86Dsdt,
  writeAcpiTables,
} from './acpi.js';
import { PM1_BASE, PM1_CNT, PM1_EVT, PM1_SIZE, Pm1Registers } from './pm.js';

const sum = (b: Uint8Array) => b.reduce((s, x) => (s + x) & 0xff, 0);
const str = (b: Uint8Array) => String.fromCharCode(...b);

/** Follows the pointers the way Linux's ACPICA does: RSDP -> XSDT -> tables, checksums on the way. */
function walk(mem: ReturnType<typeof testGuestMemory>, rsdpAt: bigint) {
  const rsdp = mem.read(GuestAddress.of(rsdpAt), 36);
  expect(str(rsdp.subarray(0, 8))).to.equal('RSD PTR ');
  expect(sum(rsdp.subarray(0, 20))).to.equal(0, 'RSDP v1 checksum');
  expect(sum(rsdp)).to.equal(0, 'RSDP extended checksum');
  expect(rsdp[15]).to.equal(2);
  const rv = new DataView(rsdp.buffer);
  const table = (addr: bigint) => {
    const head = mem.read(GuestAddress.of(addr), 36);
    const len = new DataView(head.buffer).getUint32(4, true);
    const t = mem.read(GuestAddress.of(addr), len);
    expect(sum(t)).to.equal(0, `${str(t.subarray(0, 4))} checksum`);
    return t;
  };
  const xsdt = table(rv.getBigUint64(24, true));
  expect(str(xsdt.subarray(0, 4))).to.equal('XSDT');
  const xv = new DataView(xsdt.buffer);
  const tables = new Map<string, Uint8Array>();
  for (let o = 36; o < xsdt.length; o += 8) {
    const t = table(xv.getBigUint64(o, true));
    tables.set(str(t.subarray(0, 4)), t);
  }
  const fadt = tables.get('FACP')!;
  const fv = new DataView(fadt.buffer);
  const dsdt = table(fv.getBigUint64(140, true));
  expect(BigInt(fv.getUint32(40, true))).to.equal(fv.getBigUint64(140, true), 'DSDT and X_DSDT agree');
  tables.set('DSDT', dsdt);
  return tables;
}

/** The tables as the machine builds them: the acpi plugin's table set with x86's contribution. */
function buildAcpiTables(o: { vcpus: number }) {
  const set = new AcpiTableSet();
  set.contribute(x86AcpiContribution(o.vcpus));
  return set.build(ACPI_START);
}

describe('x86 ACPI tables', () => {
  for (const vcpus of [1, 2, 8]) {
    it(`describe ${vcpus} CPU(s), the IOAPIC, the SCI override and LINT1 in the MADT; all checksums hold`, () => {
      const mem = testGuestMemory(2 << 20);
      const t = buildAcpiTables({ vcpus });
      expect(t.rsdp).to.equal(ACPI_START);
      writeAcpiTables(mem, t);
      const madt = walk(mem, t.rsdp).get('APIC')!;
      const mv = new DataView(madt.buffer);
      expect(mv.getUint32(36, true)).to.equal(Number(X86Layout.LAPIC));
      const entries: Uint8Array[] = [];
      for (let p = 44; p < madt.length; p += madt[p + 1]) entries.push(madt.subarray(p, p + madt[p + 1]));
      const cpus = entries.filter((e) => e[0] === MADT_TYPE.LAPIC);
      expect(cpus.map((e) => [e[2], e[3], e[4] & 1])).to.deep.equal(Array.from({ length: vcpus }, (_, i) => [i, i, 1]));
      const io = entries.filter((e) => e[0] === MADT_TYPE.IOAPIC);
      expect(io).to.have.length(1);
      const iv = new DataView(io[0].buffer, io[0].byteOffset);
      expect([io[0][2], iv.getUint32(4, true), iv.getUint32(8, true)]).to.deep.equal([
        vcpus,
        Number(X86Layout.IOAPIC),
        0,
      ]);
      const iso = entries.filter((e) => e[0] === MADT_TYPE.ISO);
      expect(
        iso.map((e) => [
          e[3],
          new DataView(e.buffer, e.byteOffset).getUint32(4, true),
          new DataView(e.buffer, e.byteOffset).getUint16(8, true),
        ]),
      ).to.deep.equal([[SCI_IRQ, SCI_IRQ, INTI_EDGE_HIGH]]);
      expect(entries.filter((e) => e[0] === MADT_TYPE.LAPIC_NMI).map((e) => [e[2], e[5]])).to.deep.equal([[0xff, 1]]);
    });
  }

  it('has a full (not hardware-reduced) FADT with PM1a blocks, SCI 9, an i8042 and no SMI command port', () => {
    const mem = testGuestMemory(2 << 20);
    const t = buildAcpiTables({ vcpus: 2 });
    writeAcpiTables(mem, t);
    const fadt = walk(mem, t.rsdp).get('FACP')!;
    const fv = new DataView(fadt.buffer);
    expect(fadt.length).to.equal(276);
    expect(fadt[8]).to.equal(6, 'revision');
    expect(fv.getUint32(112, true) & FADT_FLAGS.HW_REDUCED_ACPI).to.equal(0);
    expect(fv.getUint16(46, true)).to.equal(SCI_IRQ);
    expect(fv.getUint32(48, true)).to.equal(0, 'SMI_CMD');
    expect([fv.getUint32(56, true), fadt[88], fv.getUint32(64, true), fadt[89]]).to.deep.equal([
      PM1_EVT_PORT,
      4,
      PM1_CNT_PORT,
      2,
    ]);
    expect(fv.getUint32(76, true)).to.equal(0, 'no PM timer');
    const boot = fv.getUint16(109, true);
    expect(boot & IAPC_BOOT_ARCH.I8042).to.not.equal(0);
    expect(boot & IAPC_BOOT_ARCH.CMOS_RTC_NOT_PRESENT).to.equal(0);
    // MSI works (MSI routes + irqfds): with the flag Linux turns MSI/MSI-X off for every PCI function
    expect(boot & IAPC_BOOT_ARCH.MSI_NOT_SUPPORTED).to.equal(0, 'MSI supported');
  });

  it('encodes \\_S5 and a PNP0C02 device claiming GSIs 16..23 in AML', () => {
    const aml = x86Dsdt();
    // Name(\_S5_, Package(4) { 5, 5, 0, 0 })
    expect([...aml.subarray(0, 15)]).to.deep.equal(
      [0x08, 0x5c, ...'_S5_']
        .map((x) => (typeof x === 'string' ? x.charCodeAt(0) : x))
        .concat([0x12, 8, 4, 0x0a, S5_SLP_TYP, 0x0a, S5_SLP_TYP, 0, 0]),
    );
    // Scope(\_SB_) with a PkgLength that covers exactly the rest of the block
    const scope = aml.subarray(15);
    expect(scope[0]).to.equal(0x10);
    const lead = scope[1] >> 6;
    const pkgLen = lead === 0 ? scope[1] & 0x3f : (scope[1] & 0x0f) | (scope[2] << 4);
    expect(1 + pkgLen).to.equal(scope.length, 'Scope PkgLength');
    const text = str(scope);
    expect(text).to.include('\\_SB_').and.include('GSIS').and.include('_HID').and.include('_CRS');
    // EisaId("PNP0C02") as a DWordConst
    expect(text).to.include(str(Uint8Array.of(0x0c, 0x41, 0xd0, 0x0c, 0x02)));
    // Extended interrupt descriptor: consumer, edge, active high, exclusive; 8 GSIs; end tag
    const at = scope.indexOf(0x89);
    expect([...scope.subarray(at, at + 5)]).to.deep.equal([0x89, 34, 0, 0x03, 8]);
    const dv = new DataView(scope.buffer, scope.byteOffset + at + 5);
    expect(Array.from({ length: 8 }, (_, i) => dv.getUint32(i * 4, true))).to.deep.equal([
      16, 17, 18, 19, 20, 21, 22, 23,
    ]);
    expect([...scope.subarray(at + 37, at + 39)]).to.deep.equal([0x79, 0]);
    expect(at + 39).to.equal(scope.length, 'the descriptor ends the block');
  });

  it('refuses vCPU counts the MADT cannot number and tables outside their window', () => {
    expect(() => buildAcpiTables({ vcpus: 0 })).to.throw(X86BootError);
    expect(() => buildAcpiTables({ vcpus: 254 })).to.not.throw();
    expect(() => buildAcpiTables({ vcpus: 255 }))
      .to.throw(X86BootError)
      .with.property('kind', 'TooManyVcpus');
    const t = buildAcpiTables({ vcpus: 1 });
    expect(() => writeAcpiTables(testGuestMemory(0x80000), t))
      .to.throw(X86BootError)
      .with.property('kind', 'MemoryLayout');
  });
});

describe('x86 ACPI PM1 registers', () => {
  const rd = (pm: Pm1Registers, off: number, n: number) => {
    const d = new Uint8Array(n);
    pm.bus.read(BigInt(off), d);
    return d.reduce((v, b, i) => v | (b << (8 * i)), 0);
  };
  const wr = (pm: Pm1Registers, off: number, v: number, n = 2) =>
    pm.bus.write(
      BigInt(off),
      Uint8Array.from({ length: n }, (_, i) => (v >> (8 * i)) & 0xff),
    );

  it('covers status, enable and control; status reads 0, enable keeps writes, SCI_EN always set', () => {
    expect([PM1_BASE, PM1_SIZE]).to.deep.equal([PM1_EVT_PORT, 6]);
    const pm = new Pm1Registers(() => expect.fail('no poweroff'));
    wr(pm, 0, 0xffff);
    expect(rd(pm, 0, 2)).to.equal(0);
    wr(pm, 2, 0x0120);
    expect(rd(pm, 2, 2)).to.equal(0x0120);
    expect(rd(pm, 4, 2) & PM1_CNT.SCI_EN).to.equal(1);
    wr(pm, 4, 0);
    expect(rd(pm, 4, 2)).to.equal(PM1_CNT.SCI_EN);
    expect(rd(pm, 0, 4)).to.equal(0x0120 << 16);
  });

  it("powers off once on SLP_EN with \\_S5's SLP_TYP, ignores other sleep types and SLP_TYP alone", () => {
    let offs = 0;
    const pm = new Pm1Registers(() => {
      offs++;
    });
    wr(pm, 4, (S5_SLP_TYP << 10) | 1); // type without SLP_EN: Linux writes this first
    expect(offs).to.equal(0);
    wr(pm, 4, (3 << 10) | PM1_CNT.SLP_EN);
    expect([offs, pm.ignoredSleeps]).to.deep.equal([0, 1]);
    wr(pm, 5, ((S5_SLP_TYP << 10) | PM1_CNT.SLP_EN) >> 8, 1); // a byte write to the high half
    expect(offs).to.equal(1);
    expect(rd(pm, 4, 2) & PM1_CNT.SLP_EN).to.equal(0, 'SLP_EN reads as 0');
    wr(pm, 4, (S5_SLP_TYP << 10) | PM1_CNT.SLP_EN);
    expect(offs).to.equal(1);
  });

  it('power button: PWRBTN_STS set by a press, SCI level = status & enable, status write-1-to-clear', () => {
    const sci: boolean[] = [];
    const pm = new Pm1Registers(
      () => expect.fail('no poweroff'),
      (level) => sci.push(level),
    );
    expect(pm.pressPowerButton()).to.equal(false, 'not enabled: nobody listens');
    expect(rd(pm, 0, 2)).to.equal(PM1_EVT.PWRBTN);
    expect(sci).to.deep.equal([]);
    wr(pm, 0, PM1_EVT.PWRBTN); // the guest clears the stale press, then enables the event (ACPICA's order)
    wr(pm, 2, PM1_EVT.PWRBTN);
    expect([rd(pm, 0, 2), sci]).to.deep.equal([0, []]);
    expect(pm.pressPowerButton()).to.equal(true);
    expect([rd(pm, 0, 4), sci]).to.deep.equal([PM1_EVT.PWRBTN | (PM1_EVT.PWRBTN << 16), [true]]);
    wr(pm, 0, 0x00ff); // clearing other bits leaves it
    expect(sci).to.deep.equal([true]);
    wr(pm, 1, PM1_EVT.PWRBTN >> 8, 1); // a byte write of 1 to bit 8 clears it and drops the SCI
    expect([rd(pm, 0, 2), sci]).to.deep.equal([0, [true, false]]);
    pm.pressPowerButton();
    wr(pm, 2, 0); // disabling the event drops the SCI, the status stays
    expect([rd(pm, 0, 2), sci]).to.deep.equal([PM1_EVT.PWRBTN, [true, false, true, false]]);
  });
});
