import { expect } from 'chai';
import { AcpiTableSet } from '../acpi/table-set.js';
import { IASL, disassembleAml, disassembleFields, readTables } from '../acpi/testing.js';
import { skipUnlessCi } from '../../test/setup/environment.js';
import { freeSpans, mcfgTable, pciAcpiContribution, pciWindows } from './acpi.js';
import { setup, testFunction } from './test-fixtures.js';

describe('pci ACPI description', () => {
  it('leaves what other devices hold (ECAM, virtio-mmio windows) out of the bridge windows, keeps BARs in', () => {
    const { root, irq } = setup();
    root.add(testFunction('a').fn);
    const other = irq.resources.allocate('mmio32', { owner: 'virtio-mmio:vda', size: 0x1000n });
    const spans = freeSpans(irq.resources, 'mmio32');
    const ecam = root.ecam!;
    const inside = (a: bigint) => spans.some((s) => a >= s.start && a < s.end);
    expect(inside(ecam.start)).to.equal(false);
    expect(inside(other.start)).to.equal(false);
    const bar = irq.resources.allocations('mmio32').find((x) => x.owner === 'pci:a:bar0')!;
    expect(inside(bar.start)).to.equal(true);
    expect(spans.at(-1)!.end).to.equal(irq.resources.window('mmio32').alloc.end);
    const io = pciWindows(irq.resources).io;
    expect(io[0].start).to.equal(0x1000n);
  });

  it('builds PCI0 (PNP0A08/PNP0A03, _SEG, _BBN, _UID, _CRS windows, _PRT by GSI), the ECAM node and MCFG', function () {
    if (!IASL) return skipUnlessCi(this, 'iasl (acpica-tools) is not installed');
    const { root, irq } = setup();
    const tables = new AcpiTableSet();
    tables.contribute(
      pciAcpiContribution(() => ({
        windows: pciWindows(irq.resources),
        intxGsis: root.intx.gsis,
        ecam: { base: root.ecam!.start, size: root.ecam!.size },
        ports: true,
      })),
    );
    const built = readTables(tables.build(0xe0000n));
    const dsdt = built.get('DSDT')!;
    const asl = disassembleAml(dsdt.subarray(36));
    expect(asl).to.include('Device(PCI0)');
    expect(asl).to.include('Name(_HID,EisaId("PNP0A08"))');
    expect(asl).to.include('Name(_CID,EisaId("PNP0A03"))');
    expect(asl).to.match(/Name\(_SEG,Zero\)/);
    expect(asl).to.match(/Name\(_BBN,Zero\)/);
    expect(asl).to.match(/WordBusNumber\(ResourceProducer,MinFixed,MaxFixed,PosDecode,0x0000,0x0000,0x0000,/);
    expect(asl).to.include('IO(Decode16,0x0CF8,0x0CF8,0x01,0x08,)');
    expect(asl).to.match(/QWordMemory\(ResourceProducer,PosDecode,MinFixed,MaxFixed,NonCacheable,ReadWrite,/);
    expect(asl).to.match(/Package\(0x04\)\{0x0005FFFF,0x02,Zero,0x0B\}/); // slot 5 INTC -> (5+2)%4 = 3 -> GSI 11
    expect(asl).to.include('Name(_HID,EisaId("PNP0C02"))');
    expect(asl).to.include(`Memory32Fixed(ReadWrite,0x${root.ecam!.start.toString(16).toUpperCase()},0x00100000,)`);
    const mcfg = disassembleFields(built.get('MCFG')!);
    expect(mcfg).to.match(new RegExp(`Base Address : 0*${root.ecam!.start.toString(16).toUpperCase()}`));
    expect(mcfg).to.match(/Segment Group Number : 0000 Start Bus Number : 00 End Bus Number : 00/);
  });

  it('MCFG names the buses its window covers', () => {
    const body = mcfgTable({ base: 0xe000_0000n, size: 1n << 28n }).body;
    expect(body.length).to.equal(24);
    expect(new DataView(body.buffer).getBigUint64(8, true)).to.equal(0xe000_0000n);
    expect([body[18], body[19]]).to.deep.equal([0, 255]);
  });
});
