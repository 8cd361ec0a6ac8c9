import { expect } from 'chai';
import { addressOf } from '../../../core/native/libc.js';
import { offsetOf } from '../abi/layout.js';
import { ARM_VCPU_FEATURE, kvm_device_attr, kvm_one_reg, kvm_vcpu_init } from './abi.js';
import {
  decodeDeviceFd,
  decodeTarget,
  encodeCreateDevice,
  encodeDeviceAttr,
  encodeOneReg,
  encodeVcpuInit,
  u64Buffer,
} from './codec.js';

describe('kvm arm64 ioctl arguments', () => {
  it('kvm_vcpu_init: the target, PSCI 0.2 always, POWER_OFF when asked', () => {
    const on = encodeVcpuInit(5, false);
    expect(on.length).to.equal(kvm_vcpu_init.size);
    expect(decodeTarget(on)).to.equal(5);
    expect(on.readUInt32LE(offsetOf(kvm_vcpu_init, 'features'))).to.equal(1 << ARM_VCPU_FEATURE.PSCI_0_2);
    const off = encodeVcpuInit(5, true);
    expect(off.readUInt32LE(4)).to.equal((1 << ARM_VCPU_FEATURE.PSCI_0_2) | (1 << ARM_VCPU_FEATURE.POWER_OFF));
    expect(off.subarray(8).every((b) => b === 0)).to.equal(true);
  });
  it('kvm_one_reg and kvm_device_attr point at the value buffer', () => {
    const value = u64Buffer(0x1234n);
    const r = encodeOneReg(0x6030_0000_0010_0040n, value);
    expect(r.readBigUInt64LE(offsetOf(kvm_one_reg, 'id'))).to.equal(0x6030_0000_0010_0040n);
    expect(r.readBigUInt64LE(offsetOf(kvm_one_reg, 'addr'))).to.equal(addressOf(value));
    expect(() => encodeOneReg(1n, Buffer.alloc(4))).to.throw(RangeError);
    const a = encodeDeviceAttr(0, 2n, value);
    expect(a.readUInt32LE(offsetOf(kvm_device_attr, 'group'))).to.equal(0);
    expect(a.readBigUInt64LE(offsetOf(kvm_device_attr, 'attr'))).to.equal(2n);
    expect(a.readBigUInt64LE(offsetOf(kvm_device_attr, 'addr'))).to.equal(addressOf(value));
    expect(encodeDeviceAttr(4, 0n).readBigUInt64LE(offsetOf(kvm_device_attr, 'addr'))).to.equal(0n);
  });
  it('kvm_create_device carries the type in and the fd out', () => {
    const b = encodeCreateDevice(7);
    expect(b.readUInt32LE(0)).to.equal(7);
    b.writeUInt32LE(42, 4);
    expect(decodeDeviceFd(b)).to.equal(42);
    expect(u64Buffer(-1n).readBigUInt64LE()).to.equal((1n << 64n) - 1n);
  });
});
