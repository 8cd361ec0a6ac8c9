import { expect } from 'chai';
import { dtcDecompile, needDtc } from '../testing.js';
import { decodeFdt, findNode, propCells, propStrings } from './decode.js';
import { encodeFdt, FDT_MAGIC } from './encode.js';
import { cells, EMPTY, node, str, strings, u64Cells } from './values.js';

const sample = () =>
  node('', { '#address-cells': cells(2), '#size-cells': cells(2), compatible: str('test,board') }, [
    node('memory@40000000', { device_type: str('memory'), reg: u64Cells(0x4000_0000n, 0x1000_0000n) }),
    node('chosen', { bootargs: str('console=ttyS0 quiet'), flag: EMPTY, list: strings(['a', 'bc']) }),
  ]);

describe('arm64 flattened device tree', () => {
  it('encodes a header dtc and our decoder both read back', function () {
    const blob = encodeFdt(sample(), { bootCpuId: 3 });
    const v = new DataView(blob.buffer);
    expect(v.getUint32(0)).to.equal(FDT_MAGIC);
    expect(v.getUint32(4)).to.equal(blob.length);
    expect(v.getUint32(20)).to.equal(17);
    const { root, bootCpuId } = decodeFdt(blob);
    expect(bootCpuId).to.equal(3);
    expect(propCells(findNode(root, '/memory@40000000'), 'reg')).to.deep.equal([0, 0x4000_0000, 0, 0x1000_0000]);
    expect(propStrings(findNode(root, '/chosen'), 'bootargs')).to.deep.equal(['console=ttyS0 quiet']);
    expect(propStrings(findNode(root, '/chosen'), 'list')).to.deep.equal(['a', 'bc']);
    needDtc(this);
    const d = dtcDecompile(blob);
    expect(d.status, d.stderr).to.equal(0);
    expect(d.dts).to.include('bootargs = "console=ttyS0 quiet";');
    expect(d.dts).to.include('reg = <0x00 0x40000000 0x00 0x10000000>;');
    expect(d.dts).to.include('list = "a\\0bc";');
    expect(d.dts).to.match(/flag;/);
  });

  it('shares property names in the strings block', () => {
    const blob = encodeFdt(
      node('', {}, [node('a', { reg: cells(1) }), node('b', { reg: cells(2) }), node('c', { reg: cells(3) })]),
    );
    const v = new DataView(blob.buffer);
    expect(v.getUint32(32)).to.equal('reg\0'.length);
  });

  it('refuses bad names, duplicates and values before encoding', () => {
    expect(() => encodeFdt(node('x', {}))).to.throw(/root node's name must be empty/);
    expect(() => encodeFdt(node('', {}, [node('bad name', {})]))).to.throw(/bad node name/);
    expect(() => encodeFdt(node('', {}, [node('n', {}), node('n', {})]))).to.throw(/twice/);
    expect(() => encodeFdt(node('', { ['p'.repeat(32)]: EMPTY }))).to.throw(/bad property name/);
    expect(() => cells(-1)).to.throw(/32-bit/);
    expect(() => cells(2 ** 32)).to.throw(/32-bit/);
    expect(() => u64Cells(1n << 64n)).to.throw(/u64/);
    expect(() => str('a\0b')).to.throw(/NUL/);
  });

  it('decodes hostile blobs with a clear error, never reading out of bounds', () => {
    const good = encodeFdt(sample());
    expect(() => decodeFdt(good.subarray(0, 20))).to.throw(/shorter than its header/);
    const badMagic = good.slice();
    badMagic[0] = 0;
    expect(() => decodeFdt(badMagic)).to.throw(/bad magic/);
    for (let cut = 40; cut < good.length; cut += 7) {
      const t = good.slice();
      new DataView(t.buffer).setUint32(36, cut - 56); // structure block size shrunk
      try {
        decodeFdt(t);
      } catch (e) {
        expect((e as Error).message).to.match(/^device tree blob: /);
      }
    }
    const longProp = good.slice();
    // the first property's length word (after BEGIN_NODE + "\0\0\0\0" + PROP token) made huge
    new DataView(longProp.buffer).setUint32(56 + 4 + 4 + 4, 0xffff);
    expect(() => decodeFdt(longProp)).to.throw(/runs past/);
  });
});
