import type { X86Vm } from '../../x86/hypervisor/extension.js';
import type { CpuidEntry } from '../../x86/hypervisor/types.js';
import { c, ERRNO, errno } from '../../../core/native/libc.js';
import { alloc, offsetOf } from '../abi/layout.js';
import * as S from '../abi/structs.js';
import { KVM, PIT_SPEAKER_DUMMY } from '../abi/ioctls.js';
import { KvmError } from '../errors.js';
import { ioctlBuf, ioctlError, ioctlNum } from '../native.js';
import type { KvmVm } from '../vm.js';
import { withInKernelApicFeatures } from './apic-cpuid.js';
import { decodeCpuid2, encodeCpuid2 } from './codec.js';

const PAGE = 4096n;

/**
 * The x86 extension of a KvmVm (X86Vm) and the in-kernel PIT. SAFETY: borrows the VM's fd and the
 * hypervisor's /dev/kvm fd (which outlives its VMs); every call checks the VM is still open.
 */
export class KvmX86Vm implements X86Vm {
  constructor(private readonly vm: KvmVm) {}

  /** KVM_CREATE_PIT2 (after the irqchip; the kvm plugin creates both with the VM). Idempotent. */
  createPit(): void {
    this.vm.assertOpen();
    if (this.vm.pit) return;
    const { buf, view } = alloc(S.kvm_pit_config);
    view.setUint32(offsetOf(S.kvm_pit_config, 'flags'), PIT_SPEAKER_DUMMY, true);
    ioctlBuf(this.vm.fd, 'CREATE_PIT2', buf);
    this.vm.pit = true;
  }

  setTssAddress(addr: bigint): void {
    this.vm.assertOpen();
    if (addr < 0n || addr + 3n * PAGE > 1n << 32n)
      throw new KvmError('InvalidArgument', `TSS address 0x${addr.toString(16)} must leave 3 pages below 4 GiB`);
    ioctlNum(this.vm.fd, 'SET_TSS_ADDR', addr);
  }

  setIdentityMapAddress(addr: bigint): void {
    this.vm.assertOpen();
    if (addr < 0n || addr + PAGE > 1n << 32n)
      throw new KvmError(
        'InvalidArgument',
        `identity map address 0x${addr.toString(16)} must leave 1 page below 4 GiB`,
      );
    const { buf, view } = alloc(8);
    view.setBigUint64(0, addr, true);
    ioctlBuf(this.vm.fd, 'SET_IDENTITY_MAP_ADDR', buf);
  }

  /** KVM_GET_SUPPORTED_CPUID plus what the VM's in-kernel LAPIC offers (TSC-deadline timer; apic-cpuid.ts). */
  supportedCpuid(): CpuidEntry[] {
    this.vm.assertOpen();
    return withInKernelApicFeatures(this.kvmSupportedCpuid(), {
      irqchip: this.vm.hasIrqChip,
      tscDeadline: this.vm.capabilities.check('KVM_CAP_TSC_DEADLINE_TIMER') > 0,
    });
  }

  private kvmSupportedCpuid(): CpuidEntry[] {
    for (let cap = 128; cap <= 4096; cap *= 2) {
      const buf = encodeCpuid2([], cap);
      // SAFETY: systemFd is borrowed from the hypervisor, which outlives its VMs.
      const r = Number(c.ioctlPtr(this.vm.systemFd, KVM.GET_SUPPORTED_CPUID, buf));
      if (r >= 0) return decodeCpuid2(new DataView(buf.buffer, buf.byteOffset, buf.byteLength));
      const e = errno();
      if (e !== ERRNO.E2BIG) throw ioctlError('GET_SUPPORTED_CPUID', this.vm.systemFd, e);
    }
    throw new KvmError('Ioctl', 'KVM_GET_SUPPORTED_CPUID needs more than 4096 entries');
  }
}
