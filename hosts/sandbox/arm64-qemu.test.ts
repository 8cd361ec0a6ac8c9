import { expect } from 'chai';
import { neededOf, packageOf } from './arm64-qemu.js';

describe('arm64 QEMU closure', () => {
  it("reads an ELF file's DT_NEEDED libraries", () => {
    expect(neededOf(process.execPath)).to.include('libc.so.6');
  });

  it("names the installed package holding a library for the host's architecture, and refuses an unknown one", () => {
    expect(packageOf('libz.so.1')).to.equal('zlib1g');
    expect(() => packageOf('libnosuch-tsvmm.so.9')).to.throw(/no installed package holds libnosuch-tsvmm.so.9/);
  });
});
