import { c } from '../../../core/native/libc.js';
import type { Arm64Vm } from '../../arm64/hypervisor/extension.js';
import { Arm64Layout } from '../../arm64/layout.js';
import { KvmError } from '../errors.js';
import type { KvmVm } from '../vm.js';
import { alloc } from '../abi/layout.js';
import { DEV_TYPE, kvm_vcpu_init, spiIrqLine, VGIC } from './abi.js';
import { decodeDeviceFd, decodeTarget, encodeCreateDevice, encodeDeviceAttr, u64Buffer } from './codec.js';
import { arm64Ioctl } from './native.js';

/**
 * The arm64 part of a KvmVm: the GICv3 and its ITS through KVM's device API at the layout's addresses
 * (distributor, one redistributor region KVM sizes by the vCPU count, ITS), and the KVM_IRQ_LINE encoding
 * of an SPI. SAFETY: owns the two device fds (closed with the VM through close()); borrows the VM's fd.
 */
export class KvmArm64Vm implements Arm64Vm {
  private gicFd = -1;
  private itsFd = -1;
  private initialised = false;
  /** irqfd (de)registrations made before the vGIC was initialised, in order (KVM answers them EAGAIN). */
  private readonly pendingIrqfds: Array<() => void> = [];

  constructor(private readonly vm: KvmVm) {}

  get hasIts(): boolean {
    return this.itsFd >= 0;
  }

  preferredTarget(): number {
    this.vm.assertOpen();
    const { buf } = alloc(kvm_vcpu_init);
    arm64Ioctl(this.vm.fd, 'ARM_PREFERRED_TARGET', buf);
    return decodeTarget(buf);
  }

  /** Creates the GICv3 (KVM_CREATE_IRQCHIP makes only a GICv2 on arm64), then the ITS beside it. */
  createIrqChip(): void {
    this.vm.assertOpen();
    if (this.gicFd >= 0) return;
    this.gicFd = this.createDevice(DEV_TYPE.ARM_VGIC_V3, 'the GICv3');
    this.setAttr(this.gicFd, VGIC.GRP_ADDR, BigInt(VGIC.V3_ADDR_TYPE_DIST), u64Buffer(Arm64Layout.GIC_DIST));
    this.setAttr(this.gicFd, VGIC.GRP_ADDR, BigInt(VGIC.V3_ADDR_TYPE_REDIST), u64Buffer(Arm64Layout.GIC_REDIST));
    const nr = Buffer.alloc(4);
    nr.writeUInt32LE(Arm64Layout.GIC_NR_IRQS);
    this.setAttr(this.gicFd, VGIC.GRP_NR_IRQS, 0n, nr);
    this.itsFd = this.createDevice(DEV_TYPE.ARM_VGIC_ITS, 'the GICv3 ITS');
    this.setAttr(this.itsFd, VGIC.GRP_ADDR, BigInt(VGIC.ITS_ADDR_TYPE), u64Buffer(Arm64Layout.GIC_ITS));
    this.setAttr(this.itsFd, VGIC.GRP_CTRL, BigInt(VGIC.CTRL_INIT));
  }

  finalizeIrqChip(): void {
    this.vm.assertOpen();
    if (this.gicFd < 0) throw new KvmError('InvalidArgument', 'the GICv3 was not created (kvm config irqchip: false)');
    if (this.initialised) return;
    this.setAttr(this.gicFd, VGIC.GRP_CTRL, BigInt(VGIC.CTRL_INIT));
    this.initialised = true;
    for (const op of this.pendingIrqfds.splice(0)) op();
  }

  /**
   * Devices register their irqfds when they attach, before the machine creates the vCPUs; KVM on arm64
   * refuses KVM_IRQFD (EAGAIN) until the vGIC is initialised, which needs every vCPU. Those wait here
   * and run, in order, right after finalizeIrqChip(). True: taken for later.
   */
  deferIrqfd(op: () => void): boolean {
    if (this.initialised) return false;
    this.pendingIrqfds.push(op);
    return true;
  }

  /** KVM_IRQ_LINE's irq word for GSI `gsi` (SPI gsi, INTID gsi + 32). */
  irqLine(gsi: number): number {
    return spiIrqLine(gsi);
  }

  /** Closes the device fds (the VM's close() calls it). */
  close(): void {
    for (const fd of [this.itsFd, this.gicFd]) if (fd >= 0) c.close(fd);
    this.itsFd = this.gicFd = -1;
  }

  private createDevice(type: number, what: string): number {
    const buf = encodeCreateDevice(type);
    arm64Ioctl(this.vm.fd, 'CREATE_DEVICE', buf, `creating ${what}`);
    return decodeDeviceFd(buf);
  }

  private setAttr(fd: number, group: number, attr: bigint, value?: Buffer): void {
    arm64Ioctl(fd, 'SET_DEVICE_ATTR', encodeDeviceAttr(group, attr, value), `group ${group} attr ${attr}`);
  }
}
