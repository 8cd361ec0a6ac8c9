import { expect } from 'chai';
import { EXIT, EXIT_IO_IN, EXIT_IO_OUT, SYSTEM_EVENT } from './abi/ioctls.js';
import { RUN, RunArea } from './run-area.js';

function area(): { a: RunArea; v: DataView; bytes: Uint8Array } {
  const bytes = new Uint8Array(4096 * 2);
  return { a: new RunArea(bytes), v: new DataView(bytes.buffer), bytes };
}

describe('RunArea (kvm_run decoding)', () => {
  it('decodes a PIO exit whose data aliases the page', () => {
    const { a, v, bytes } = area();
    v.setUint32(RUN.exitReason, EXIT.IO, true);
    v.setUint8(RUN.ioDirection, EXIT_IO_OUT);
    v.setUint8(RUN.ioSize, 2);
    v.setUint16(RUN.ioPort, 0x1f0, true);
    v.setUint32(RUN.ioCount, 3, true);
    v.setBigUint64(RUN.ioDataOffset, 4096n, true);
    bytes.set([1, 2, 3, 4, 5, 6], 4096);
    const e = a.decode();
    expect(e).to.deep.include({ kind: 'io', space: 'pio', direction: 'out', port: 0x1f0, size: 2, count: 3 });
    if (e.kind !== 'io') throw new Error('not io');
    expect([...e.data]).to.deep.equal([1, 2, 3, 4, 5, 6]);
    e.data[0] = 9;
    expect(bytes[4096]).to.equal(9);
    v.setUint8(RUN.ioDirection, EXIT_IO_IN);
    expect(a.decode()).to.include({ direction: 'in' });
  });

  it('refuses PIO data outside the mapping or with an impossible size', () => {
    const { a, v } = area();
    v.setUint32(RUN.exitReason, EXIT.IO, true);
    v.setUint8(RUN.ioSize, 4);
    v.setUint32(RUN.ioCount, 0x4000_0000, true);
    v.setBigUint64(RUN.ioDataOffset, 4096n, true);
    expect(a.decode()).to.deep.equal({ kind: 'internal-error', suberror: -1 });
    v.setUint32(RUN.ioCount, 1, true);
    v.setBigUint64(RUN.ioDataOffset, 1n << 62n, true);
    expect(a.decode()).to.deep.equal({ kind: 'internal-error', suberror: -1 });
    v.setBigUint64(RUN.ioDataOffset, 4096n, true);
    v.setUint8(RUN.ioSize, 3);
    expect(a.decode().kind).to.equal('internal-error');
  });

  it('follows data_offset and length changes although it reuses data views', () => {
    const { a, v, bytes } = area();
    v.setUint32(RUN.exitReason, EXIT.IO, true);
    v.setUint8(RUN.ioSize, 1);
    v.setUint32(RUN.ioCount, 1, true);
    v.setBigUint64(RUN.ioDataOffset, 4096n, true);
    bytes.set([7, 8, 9], 4096);
    const first = a.decode();
    if (first.kind !== 'io') throw new Error('not io');
    expect([...first.data]).to.deep.equal([7]);
    v.setUint32(RUN.ioCount, 3, true);
    const e = a.decode();
    expect(e.kind === 'io' && [...e.data]).to.deep.equal([7, 8, 9]);
    v.setUint32(RUN.ioCount, 1, true);
    v.setBigUint64(RUN.ioDataOffset, 4097n, true);
    const f = a.decode();
    expect(f.kind === 'io' && [...f.data]).to.deep.equal([8]);
    // a high half that is not zero never lies inside the mapping, whatever the low half says
    v.setBigUint64(RUN.ioDataOffset, (1n << 32n) + 4096n, true);
    expect(a.decode()).to.deep.equal({ kind: 'internal-error', suberror: -1 });
    // MMIO data views per length
    v.setUint32(RUN.exitReason, EXIT.MMIO, true);
    for (const len of [1, 2, 8, 4]) {
      v.setUint32(RUN.mmioLen, len, true);
      const m = a.decode();
      expect(m.kind === 'mmio' && m.data.byteOffset - bytes.byteOffset).to.equal(RUN.mmioData);
      expect(m.kind === 'mmio' && m.data.length).to.equal(len);
    }
  });

  it('decodes MMIO and rejects lengths above 8', () => {
    const { a, v } = area();
    v.setUint32(RUN.exitReason, EXIT.MMIO, true);
    v.setBigUint64(RUN.mmioAddr, 0xfee0_0000n, true);
    v.setUint32(RUN.mmioLen, 4, true);
    v.setUint8(RUN.mmioIsWrite, 1);
    const e = a.decode();
    expect(e).to.deep.include({ kind: 'mmio', address: 0xfee0_0000n, isWrite: true });
    expect(e.kind === 'mmio' && e.data.length).to.equal(4);
    v.setUint32(RUN.mmioLen, 9, true);
    expect(a.decode().kind).to.equal('internal-error');
  });

  it('decodes system events, errors and unknown reasons', () => {
    const { a, v } = area();
    v.setUint32(RUN.exitReason, EXIT.SYSTEM_EVENT, true);
    v.setUint32(RUN.systemEventType, SYSTEM_EVENT.RESET, true);
    expect(a.decode()).to.deep.equal({ kind: 'system-event', type: 'reset', raw: 2 });
    v.setUint32(RUN.systemEventType, 77, true);
    expect(a.decode()).to.include({ type: 'other', raw: 77 });
    v.setUint32(RUN.exitReason, EXIT.INTERNAL_ERROR, true);
    v.setUint32(RUN.internalSuberror, 1, true);
    v.setUint32(RUN.internalNdata, 1000, true);
    expect(a.decode()).to.deep.equal({ kind: 'internal-error', suberror: 1 });
    expect(a.internalData()).to.have.length(16);
    v.setUint32(RUN.exitReason, EXIT.FAIL_ENTRY, true);
    v.setBigUint64(RUN.failEntryReason, 0x80000021n, true);
    expect(a.decode()).to.deep.equal({ kind: 'fail-entry', reason: 0x80000021n });
    for (const [r, kind] of [
      [EXIT.HLT, 'hlt'],
      [EXIT.SHUTDOWN, 'shutdown'],
      [EXIT.INTR, 'intr'],
      [EXIT.DEBUG, 'debug'],
    ] as const) {
      v.setUint32(RUN.exitReason, r, true);
      expect(a.decode()).to.deep.equal({ kind });
    }
    v.setUint32(RUN.exitReason, 12345, true);
    expect(a.decode()).to.deep.equal({ kind: 'unknown', reason: 12345 });
  });

  it('round-trips immediate_exit and refuses a mapping smaller than kvm_run', () => {
    const { a, bytes } = area();
    a.immediateExit = 1;
    expect(bytes[RUN.immediateExit]).to.equal(1);
    expect(() => new RunArea(new Uint8Array(100))).to.throw(RangeError);
  });
});
