/**
 * Argument buffers of the arm64 ioctls: kvm_vcpu_init, kvm_one_reg (id + the address of a u64),
 * kvm_device_attr (group, attr + the address of its value), kvm_create_device. Pure: unit-tested on any host.
 */
import { addressOf } from '../../../core/native/libc.js';
import { alloc, offsetOf } from '../abi/layout.js';
import { ARM_VCPU_FEATURE, kvm_create_device, kvm_device_attr, kvm_one_reg, kvm_vcpu_init } from './abi.js';

/** kvm_vcpu_init for `target` with PSCI 0.2 and, when asked, POWER_OFF. */
export function encodeVcpuInit(target: number, powerOff: boolean): Buffer {
  const { buf, view } = alloc(kvm_vcpu_init);
  view.setUint32(offsetOf(kvm_vcpu_init, 'target'), target >>> 0, true);
  let f0 = 1 << ARM_VCPU_FEATURE.PSCI_0_2;
  if (powerOff) f0 |= 1 << ARM_VCPU_FEATURE.POWER_OFF;
  view.setUint32(offsetOf(kvm_vcpu_init, 'features'), f0 >>> 0, true);
  return buf;
}

/** The target of a KVM_ARM_PREFERRED_TARGET answer. */
export function decodeTarget(buf: Buffer): number {
  return buf.readUInt32LE(offsetOf(kvm_vcpu_init, 'target'));
}

/** kvm_one_reg for `id` over `value` (a u64 Buffer the kernel reads or fills); keep `value` alive for the call. */
export function encodeOneReg(id: bigint, value: Buffer): Buffer {
  if (value.length < 8) throw new RangeError('a one-reg value buffer holds at least 8 bytes');
  const { buf, view } = alloc(kvm_one_reg);
  view.setBigUint64(offsetOf(kvm_one_reg, 'id'), id, true);
  view.setBigUint64(offsetOf(kvm_one_reg, 'addr'), addressOf(value), true);
  return buf;
}

/** kvm_device_attr (group, attr) pointing at `value` (none: addr 0, e.g. CTRL_INIT). */
export function encodeDeviceAttr(group: number, attr: bigint, value?: Buffer): Buffer {
  const { buf, view } = alloc(kvm_device_attr);
  view.setUint32(offsetOf(kvm_device_attr, 'group'), group >>> 0, true);
  view.setBigUint64(offsetOf(kvm_device_attr, 'attr'), attr, true);
  view.setBigUint64(offsetOf(kvm_device_attr, 'addr'), value ? addressOf(value) : 0n, true);
  return buf;
}

/** kvm_create_device for `type`. */
export function encodeCreateDevice(type: number): Buffer {
  const { buf, view } = alloc(kvm_create_device);
  view.setUint32(offsetOf(kvm_create_device, 'type'), type >>> 0, true);
  return buf;
}

/** The new device's fd from a KVM_CREATE_DEVICE answer. */
export function decodeDeviceFd(buf: Buffer): number {
  return buf.readUInt32LE(offsetOf(kvm_create_device, 'fd'));
}

/** A u64 value Buffer (little-endian) holding `v`. */
export function u64Buffer(v: bigint = 0n): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, v));
  return b;
}
