import { expect } from 'chai';
import { skipUnlessCi } from '../../../test/setup/environment.js';
import { IASL, disassembleAml, normalizeAsl } from '../testing.js';
import * as a from './index.js';

/** Each case: AML from the builder, and the ASL that ACPICA's disassembler must print for it. */
const CASES: { what: string; aml: () => Uint8Array; asl: string }[] = [
  {
    what: 'a Name with a package at the root (\\_S5)',
    aml: () => a.name('\\_S5', a.pkg([5, 5, 0, 0])),
    asl: 'Name (\\_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })',
  },
  {
    what: 'a device with a string _HID, an integer _UID and Memory32Fixed + Interrupt resources',
    aml: () =>
      a.scope('\\_SB', [
        a.device('VR00', [
          a.name('_HID', 'LNRO0005'),
          a.name('_UID', 0x1234),
          a.name('_CRS', a.resourceTemplate([a.memory32Fixed(0xd0000000n, 0x1000n), a.interrupt([5])])),
        ]),
      ]),
    asl: `Scope (\\_SB) { Device (VR00) { Name (_HID, "LNRO0005") Name (_UID, 0x1234)
      Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, 0xD0000000, 0x00001000, )
      Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { 0x00000005, } }) } }`,
  },
  {
    what: 'a PCI host bridge: EisaId _HID/_CID, bus, I/O and memory windows, a _PRT',
    aml: () =>
      a.device('PCI0', [
        a.name('_HID', a.eisaId('PNP0A08')),
        a.name('_CID', a.eisaId('PNP0A03')),
        a.name(
          '_CRS',
          a.resourceTemplate([
            a.wordBusNumber({ min: 0, max: 0xff }),
            a.io(0xcf8, 0xcf8, 1, 8),
            a.wordIo({ min: 0, max: 0xcf7 }),
            a.dwordIo({ min: 0xd00, max: 0xffff }),
            a.dwordMemory({ min: 0xc0000000, max: 0xfebfffff, cache: 'NonCacheable' }),
            a.qwordMemory({ min: 0x1_0000_0000n, max: 0x1_ffff_ffffn, cache: 'Prefetchable' }),
            a.interrupt([16, 17], { edge: false, activeLow: true, shared: true }),
          ]),
        ),
        a.name('_PRT', a.pkg([a.pkg([0xffff, 0, 0, 16]), a.pkg([0x1ffff, 1, 0, 17])])),
      ]),
    asl: `Device (PCI0) { Name (_HID, EisaId ("PNP0A08")) Name (_CID, EisaId ("PNP0A03"))
      Name (_CRS, ResourceTemplate () {
        WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0x0000, 0x0000, 0x00FF, 0x0000, 0x0100, ,, )
        IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08, )
        WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
          0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8, ,, , TypeStatic, DenseTranslation)
        DWordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
          0x00000000, 0x00000D00, 0x0000FFFF, 0x00000000, 0x0000F300, ,, , TypeStatic, DenseTranslation)
        DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
          0x00000000, 0xC0000000, 0xFEBFFFFF, 0x00000000, 0x3EC00000, ,, , AddressRangeMemory, TypeStatic)
        QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Prefetchable, ReadWrite,
          0x0000000000000000, 0x0000000100000000, 0x00000001FFFFFFFF, 0x0000000000000000, 0x0000000100000000,
          ,, , AddressRangeMemory, TypeStatic)
        Interrupt (ResourceConsumer, Level, ActiveLow, Shared, ,, ) { 0x00000010, 0x00000011, } })
      Name (_PRT, Package (0x02) { Package (0x04) { 0xFFFF, Zero, Zero, 0x10 },
        Package (0x04) { 0x0001FFFF, One, Zero, 0x11 } }) }`,
  },
  {
    what: 'an operation region with a field, a mutex and a method with control flow and arithmetic',
    aml: () =>
      a.scope('\\_SB', [
        a.device('PCI0', [a.name('_HID', a.eisaId('PNP0A03'))]),
        a.mutex('MLCK', 0),
        a.opRegion('PCST', a.RegionSpace.SystemIO, 0xae00, 8),
        a.field('PCST', [{ name: 'PCIU', bits: 32 }, { bits: 32 }, { name: 'B0EJ', bits: 1 }], {
          access: a.FieldAccess.DWord,
          update: a.FieldUpdate.WriteAsZeros,
        }),
        a.method(
          'PCNT',
          1,
          [
            a.acquire('MLCK'),
            a.store(a.arg(0), a.local(0)),
            a.ifThen(a.lEqual(a.local(0), 1), [a.notify('\\_SB.PCI0', 1)], [a.store(a.add(a.local(0), 2), a.local(1))]),
            a.whileLoop(a.lLess(a.local(0), 8), [
              a.increment(a.local(0)),
              a.ifThen(a.lGreater(a.local(0), 5), [a.BREAK]),
            ]),
            a.and(a.ref('PCIU'), 0xff00, a.local(2)),
            a.or(a.local(2), a.shiftLeft(1, 3), a.local(2)),
            a.store(a.shiftRight(a.local(2), 1), 'B0EJ'),
            a.ifThen(a.lAnd(a.lNot(a.local(0)), a.lOr(0, 1)), [a.ret(a.subtract(a.local(0), 1))]),
            a.release('MLCK'),
            a.ret(a.buffer([1, 2, 3])),
          ],
          { serialized: true },
        ),
        a.method('CALL', 0, [a.call('PCNT', [3]), a.ret('abc'), a.ret(0x123456789n), a.ret(a.ONES)]),
      ]),
    asl: `Scope (\\_SB) { Device (PCI0) { Name (_HID, EisaId ("PNP0A03")) }
      Mutex (MLCK, 0x00)
      OperationRegion (PCST, SystemIO, 0xAE00, 0x08)
      Field (PCST, DWordAcc, NoLock, WriteAsZeros) { PCIU, 32, Offset (0x08), B0EJ, 1 }
      Method (PCNT, 1, Serialized) {
        Acquire (MLCK, 0xFFFF)
        Local0 = Arg0
        If ((Local0 == One)) { Notify (\\_SB.PCI0, One) } Else { Local1 = (Local0 + 0x02) }
        While ((Local0 < 0x08)) { Local0++ If ((Local0 > 0x05)) { Break } }
        Local2 = (PCIU & 0xFF00)
        Local2 |= (One << 0x03)
        B0EJ = (Local2 >> One)
        If ((!Local0 && (Zero || One))) { Return ((Local0 - One)) }
        Release (MLCK)
        Return (Buffer (0x03) { 0x01, 0x02, 0x03 }) }
      Method (CALL, 0, NotSerialized) { PCNT (0x03) Return ("abc") Return (0x0000000123456789) Return (Ones) } }`,
  },
];

describe('AML builder, read back by ACPICA (iasl -d)', function () {
  this.timeout(60_000);
  before(function () {
    if (!IASL) skipUnlessCi(this, 'iasl is not installed (Debian acpica-tools)');
  });

  for (const c of CASES) {
    it(`disassembles ${c.what}`, () => {
      expect(disassembleAml(c.aml())).to.equal(normalizeAsl(c.asl));
    });
  }

  it('keeps a valid stream with multi-byte package lengths (200 devices: a 3-byte scope length)', () => {
    const devices = Array.from({ length: 200 }, (_, i) =>
      a.device(`D${i.toString(16).toUpperCase().padStart(3, '0')}`, [
        a.name('_HID', 'LNRO0005'),
        a.name('_UID', i),
        a.name('_CRS', a.resourceTemplate([a.memory32Fixed(0xd0000000n + BigInt(i) * 0x1000n, 0x1000n)])),
      ]),
    );
    const asl = disassembleAml(a.scope('\\_SB', devices));
    expect(asl.match(/"LNRO0005"/g)).to.have.length(200);
    expect(asl).to.include(normalizeAsl('Device (D0C7) { Name (_HID, "LNRO0005") Name (_UID, 0xC7)'));
    expect(asl.endsWith(normalizeAsl('0xD00C7000, 0x00001000, ) }) } }')), asl.slice(-200)).to.equal(true);
  });
});
