import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { fieldAt, leafPaths, offsetOf, sizeOf, struct, union, array } from './layout.js';
import { ALL_STRUCTS, kvm_run, kvm_sregs } from './structs.js';
import { KVM, KNOWN, _IOR, _IOW } from './ioctls.js';
import { KVM_CAP } from './caps.js';
import { skipUnlessCi } from '../../../test/setup/environment.js';
import { hasGcc, measureC, structProbes } from '../../../test/harness/c-measure.js';

const HEADER = '/usr/include/linux/kvm.h';

/** Compiles a C program printing sizeof/offsetof of every member we declare and every ioctl/cap number. */
function measureWithGcc(): Map<string, number> {
  const body = structProbes(ALL_STRUCTS);
  for (const k of Object.keys(KVM)) body.push(`printf("ioctl ${k} %lu\\n", (unsigned long)KVM_${k});`);
  for (const k of Object.keys(KVM_CAP)) body.push(`printf("cap ${k} %d\\n", (int)${k});`);
  return measureC(['linux/kvm.h'], body);
}

describe('kvm ABI layouts', () => {
  describe('layout engine', () => {
    it('aligns members like the C ABI and pads the struct', () => {
      const s = struct('t', [
        ['a', 'u8'],
        ['b', 'u64'],
        ['c', 'u16'],
      ]);
      expect(offsetOf(s, 'b')).to.equal(8);
      expect(offsetOf(s, 'c')).to.equal(16);
      expect(s.size).to.equal(24);
    });
    it('puts union members at 0 and looks through anonymous members', () => {
      const u = union('', [
        ['x', 'u32'],
        ['y', array('u8', 12)],
      ]);
      const s = struct('t', [
        ['h', 'u32'],
        [null, u],
      ]);
      expect(sizeOf(u)).to.equal(12);
      expect(offsetOf(s, 'y')).to.equal(4);
      expect(s.size).to.equal(16);
    });
    it('indexes arrays of structs and rejects unknown members', () => {
      expect(fieldAt(kvm_sregs, 'ds.selector').offset).to.equal(24 + 12);
      expect(() => offsetOf(kvm_run, 'nope')).to.throw(/no member/);
      expect(() => offsetOf(kvm_sregs, 'interrupt_bitmap[4]')).to.throw(/out of bounds/);
    });
  });

  describe('ioctl numbers', () => {
    it('match the well-known values', () => {
      for (const [k, v] of Object.entries(KNOWN)) expect(KVM[k as keyof typeof KVM], k).to.equal(v);
    });
    it('encode direction and size', () => {
      expect(_IOR(0xae, 0x81, 0x90)).to.equal(0x8090ae81);
      expect(_IOW(0xae, 0x46, 32)).to.equal(0x4020ae46);
      expect(() => _IOW(0xae, 1, 1 << 14)).to.throw(RangeError);
    });
  });

  describe('against gcc and <linux/kvm.h>', function () {
    let measured: Map<string, number>;
    before(function () {
      if (!existsSync(HEADER)) skipUnlessCi(this, `${HEADER} is missing (Debian linux-libc-dev)`);
      if (!hasGcc()) skipUnlessCi(this, 'gcc is not installed (Debian gcc, libc6-dev)');
      this.timeout(90_000);
      measured = measureWithGcc();
    });

    for (const [name, def] of Object.entries(ALL_STRUCTS)) {
      it(`struct ${name}: size and every member offset`, () => {
        expect(def.size, `sizeof(${name})`).to.equal(measured.get(`size ${name}`));
        for (const p of leafPaths(def)) {
          const f = fieldAt(def, p);
          expect(f.offset, `offsetof(${name}, ${p})`).to.equal(measured.get(`off ${name}.${p}`));
          expect(f.size, `sizeof(${name}.${p})`).to.equal(measured.get(`fsize ${name}.${p}`));
        }
      });
    }

    it('every ioctl number', () => {
      for (const [k, v] of Object.entries(KVM)) expect(v, `KVM_${k}`).to.equal(measured.get(`ioctl ${k}`));
    });
    it('every capability number', () => {
      for (const [k, v] of Object.entries(KVM_CAP)) expect(v, k).to.equal(measured.get(`cap ${k}`));
    });
  });
});
