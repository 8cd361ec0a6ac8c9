import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { fieldAt, leafPaths } from '../kvm/abi/layout.js';
import { skipUnlessCi } from '../../test/setup/environment.js';
import { hasGcc, measureC, structProbes } from '../../test/harness/c-measure.js';
import * as abi from './abi.js';
import { decodeRegionInfo, encodeIrqSet } from './native.js';

const HEADER = '/usr/include/linux/vfio.h';
/** Flag and index constants checked by name against the header (JS name = C macro name). */
const CONSTANTS = [
  'VFIO_API_VERSION',
  'VFIO_TYPE1_IOMMU',
  'VFIO_TYPE1v2_IOMMU',
  'VFIO_GROUP_FLAGS_VIABLE',
  'VFIO_GROUP_FLAGS_CONTAINER_SET',
  'VFIO_DEVICE_FLAGS_RESET',
  'VFIO_DEVICE_FLAGS_PCI',
  'VFIO_REGION_INFO_FLAG_READ',
  'VFIO_REGION_INFO_FLAG_WRITE',
  'VFIO_REGION_INFO_FLAG_MMAP',
  'VFIO_REGION_INFO_FLAG_CAPS',
  'VFIO_REGION_INFO_CAP_SPARSE_MMAP',
  'VFIO_REGION_INFO_CAP_MSIX_MAPPABLE',
  'VFIO_IRQ_INFO_EVENTFD',
  'VFIO_IRQ_INFO_MASKABLE',
  'VFIO_IRQ_INFO_AUTOMASKED',
  'VFIO_IRQ_INFO_NORESIZE',
  'VFIO_IRQ_SET_DATA_NONE',
  'VFIO_IRQ_SET_DATA_BOOL',
  'VFIO_IRQ_SET_DATA_EVENTFD',
  'VFIO_IRQ_SET_ACTION_MASK',
  'VFIO_IRQ_SET_ACTION_UNMASK',
  'VFIO_IRQ_SET_ACTION_TRIGGER',
  'VFIO_DMA_MAP_FLAG_READ',
  'VFIO_DMA_MAP_FLAG_WRITE',
] as const;
const C_INDEX = {
  'VfioPciRegion.BAR0': 'VFIO_PCI_BAR0_REGION_INDEX',
  'VfioPciRegion.BAR5': 'VFIO_PCI_BAR5_REGION_INDEX',
  'VfioPciRegion.ROM': 'VFIO_PCI_ROM_REGION_INDEX',
  'VfioPciRegion.CONFIG': 'VFIO_PCI_CONFIG_REGION_INDEX',
  'VfioPciRegion.VGA': 'VFIO_PCI_VGA_REGION_INDEX',
  'VfioPciIrq.INTX': 'VFIO_PCI_INTX_IRQ_INDEX',
  'VfioPciIrq.MSI': 'VFIO_PCI_MSI_IRQ_INDEX',
  'VfioPciIrq.MSIX': 'VFIO_PCI_MSIX_IRQ_INDEX',
  'VfioPciIrq.ERR': 'VFIO_PCI_ERR_IRQ_INDEX',
  'VfioPciIrq.REQ': 'VFIO_PCI_REQ_IRQ_INDEX',
} as const;

function measure(): Map<string, number> {
  const body = structProbes(abi.VFIO_STRUCTS);
  for (const k of Object.keys(abi.VFIO)) body.push(`printf("ioctl ${k} %lu\\n", (unsigned long)VFIO_${k});`);
  for (const k of CONSTANTS) body.push(`printf("const ${k} %ld\\n", (long)${k});`);
  for (const [js, cName] of Object.entries(C_INDEX)) body.push(`printf("const ${js} %ld\\n", (long)${cName});`);
  return measureC(['linux/vfio.h'], body);
}

describe('vfio ABI', () => {
  it('encodes VFIO_DEVICE_SET_IRQS with its eventfds, bools or no data', () => {
    const b = encodeIrqSet(2, 'trigger', 0, 3, { kind: 'eventfd', fds: [10, 11, -1] });
    expect(b.length).to.equal(20 + 12);
    expect([
      b.readUInt32LE(0),
      b.readUInt32LE(4),
      b.readUInt32LE(8),
      b.readUInt32LE(12),
      b.readUInt32LE(16),
    ]).to.deep.equal([32, abi.VFIO_IRQ_SET_DATA_EVENTFD | abi.VFIO_IRQ_SET_ACTION_TRIGGER, 2, 0, 3]);
    expect([b.readInt32LE(20), b.readInt32LE(24), b.readInt32LE(28)]).to.deep.equal([10, 11, -1]);
    const n = encodeIrqSet(0, 'unmask', 0, 1, { kind: 'none' });
    expect(n.length).to.equal(20);
    expect(n.readUInt32LE(4)).to.equal(abi.VFIO_IRQ_SET_DATA_NONE | abi.VFIO_IRQ_SET_ACTION_UNMASK);
    expect(encodeIrqSet(1, 'mask', 1, 2, { kind: 'bool', values: [true, false] }).subarray(20)).to.deep.equal(
      Buffer.from([1, 0]),
    );
    expect(() => encodeIrqSet(2, 'trigger', 0, 2, { kind: 'eventfd', fds: [1] })).to.throw(/1 data items for 2/);
  });

  it('decodes region info with a sparse-mmap capability (the MSI-X table left out)', () => {
    const b = Buffer.alloc(32 + 16 + 32);
    b.writeUInt32LE(b.length, 0);
    b.writeUInt32LE(
      abi.VFIO_REGION_INFO_FLAG_READ | abi.VFIO_REGION_INFO_FLAG_MMAP | abi.VFIO_REGION_INFO_FLAG_CAPS,
      4,
    );
    b.writeUInt32LE(0, 8);
    b.writeUInt32LE(32, 12); // cap_offset
    b.writeBigUInt64LE(0x4000n, 16);
    b.writeBigUInt64LE(0n, 24);
    b.writeUInt16LE(abi.VFIO_REGION_INFO_CAP_SPARSE_MMAP, 32);
    b.writeUInt16LE(1, 34);
    b.writeUInt32LE(0, 36); // next: none
    b.writeUInt32LE(2, 40); // nr_areas
    b.writeBigUInt64LE(0n, 48);
    b.writeBigUInt64LE(0x2000n, 56);
    b.writeBigUInt64LE(0x3000n, 64);
    b.writeBigUInt64LE(0x1000n, 72);
    const r = decodeRegionInfo(b);
    expect(r.size).to.equal(0x4000n);
    expect(r.mmapAreas).to.deep.equal([
      { offset: 0n, size: 0x2000n },
      { offset: 0x3000n, size: 0x1000n },
    ]);
    b.writeUInt32LE(abi.VFIO_REGION_INFO_FLAG_READ, 4); // no MMAP flag: nothing to mmap
    expect(decodeRegionInfo(b).mmapAreas).to.deep.equal([]);
  });

  describe('against gcc and <linux/vfio.h>', function () {
    let measured: Map<string, number>;
    before(function () {
      if (!existsSync(HEADER)) skipUnlessCi(this, `${HEADER} is missing (Debian linux-libc-dev)`);
      this.timeout(90_000);
      if (!hasGcc()) skipUnlessCi(this, 'gcc is not installed (Debian gcc, libc6-dev)');
      measured = measure();
    });

    for (const [name, def] of Object.entries(abi.VFIO_STRUCTS)) {
      it(`struct ${name}: size and every member offset`, () => {
        expect(def.size, `sizeof(${name})`).to.equal(measured.get(`size ${name}`));
        for (const p of leafPaths(def)) {
          const f = fieldAt(def, p);
          expect(f.offset, `offsetof(${name}, ${p})`).to.equal(measured.get(`off ${name}.${p}`));
          expect(f.size, `sizeof(${name}.${p})`).to.equal(measured.get(`fsize ${name}.${p}`));
        }
      });
    }

    it('every ioctl number, flag and index', () => {
      for (const [k, v] of Object.entries(abi.VFIO)) expect(v, `VFIO_${k}`).to.equal(measured.get(`ioctl ${k}`));
      for (const k of CONSTANTS) expect(abi[k], k).to.equal(measured.get(`const ${k}`));
      for (const js of Object.keys(C_INDEX)) {
        const [obj, key] = js.split('.') as ['VfioPciRegion' | 'VfioPciIrq', string];
        expect((abi[obj] as Record<string, number>)[key], js).to.equal(measured.get(`const ${js}`));
      }
    });
  });
});
