import type { Arm64Vcpu } from '../../arm64/hypervisor/extension.js';
import type { KvmVcpu } from '../vcpu.js';
import { encodeOneReg, encodeVcpuInit, u64Buffer } from './codec.js';
import { arm64Ioctl } from './native.js';

/**
 * The arm64 extension of a KvmVcpu: KVM_ARM_VCPU_INIT with the VM's preferred target and PSCI 0.2, and
 * registers through KVM_GET/SET_ONE_REG. SAFETY: borrows the vCPU's fd (checked open before each call); the
 * value buffers a kvm_one_reg points at live on the stack of the call.
 */
export class KvmArm64Vcpu implements Arm64Vcpu {
  constructor(private readonly vcpu: KvmVcpu) {}

  private get fd(): number {
    this.vcpu.assertOpen();
    return this.vcpu.fd;
  }

  init(opts: { target: number; powerOff: boolean }): void {
    arm64Ioctl(this.fd, 'ARM_VCPU_INIT', encodeVcpuInit(opts.target, opts.powerOff));
  }

  getReg(id: bigint): bigint {
    const value = u64Buffer();
    arm64Ioctl(this.fd, 'GET_ONE_REG', encodeOneReg(id, value), `register 0x${id.toString(16)}`);
    return value.readBigUInt64LE();
  }

  setReg(id: bigint, v: bigint): void {
    const value = u64Buffer(v);
    arm64Ioctl(this.fd, 'SET_ONE_REG', encodeOneReg(id, value), `register 0x${id.toString(16)}`);
  }
}
