import type {
  EventFdLike,
  GsiRoute,
  Vcpu,
  HypervisorCapabilities,
  IoEventRegistration,
  MemorySlot,
  Vm,
} from '../../core/hypervisor/hypervisor.js';
import type { ArchExtensionKey } from '../../core/hypervisor/extension.js';
import { addressOf, c } from '../../core/native/libc.js';
import { alloc, offsetOf } from './abi/layout.js';
import * as S from './abi/structs.js';
import { hostKvmArch, type KvmArchVm } from './arch.js';
import {
  IOEVENTFD_FLAG_DATAMATCH,
  IOEVENTFD_FLAG_DEASSIGN,
  IOEVENTFD_FLAG_PIO,
  IRQCHIP_IOAPIC,
  IRQCHIP_PIC_MASTER,
  IRQCHIP_PIC_SLAVE,
  IRQFD_FLAG_DEASSIGN,
  IRQFD_FLAG_RESAMPLE,
  IRQ_ROUTING_IRQCHIP,
  IRQ_ROUTING_MSI,
  MEM_LOG_DIRTY_PAGES,
  MEM_READONLY,
  MSI_VALID_DEVID,
} from './abi/ioctls.js';
import { KvmError } from './errors.js';
import { ioctlBuf, ioctlNum } from './native.js';
import { KvmVcpu } from './vcpu.js';

const PAGE = 4096n;
const U64_MAX = (1n << 64n) - 1n;

/**
 * A KVM VM. SAFETY: owns `fd` (closed by close()) and the vCPUs it created;
 * `systemFd` (/dev/kvm) belongs to the KvmHypervisor and is only borrowed.
 * Memory slots point at host memory the caller owns: it must stay mapped while
 * the slot exists (remove the slot before unmapping).
 */
export class KvmVm implements Vm {
  private readonly slots = new Map<number, MemorySlot>();
  private readonly vcpus = new Map<number, KvmVcpu>();
  private irqchip = false;
  /** Set by the x86 part once it created the in-kernel PIT (saveState then includes it). */
  pit = false;
  private closed = false;
  private archPart?: KvmArchVm;

  constructor(
    readonly fd: number,
    /** /dev/kvm, borrowed from the hypervisor (system ioctls such as KVM_GET_SUPPORTED_CPUID). */
    readonly systemFd: number,
    readonly capabilities: HypervisorCapabilities,
    private readonly vcpuMmapSize: number,
  ) {}

  /** Throws KvmError 'Closed' once close() ran (the arch part checks before each ioctl). */
  assertOpen(): void {
    if (this.closed) throw new KvmError('Closed', 'the VM is closed');
  }
  private live(): void {
    this.assertOpen();
  }

  private arch_(): KvmArchVm {
    return (this.archPart ??= hostKvmArch().vm(this));
  }

  /** The host's arch name (KVM runs guests of the host's arch). */
  get arch(): string {
    return hostKvmArch().name;
  }

  extension<T>(key: ArchExtensionKey<T>): T | undefined {
    return this.arch_().extension(key);
  }

  get hasIrqChip(): boolean {
    return this.irqchip;
  }
  memorySlots(): readonly MemorySlot[] {
    return [...this.slots.values()];
  }
  /** The vCPUs created so far, by index. */
  vcpuList(): KvmVcpu[] {
    return [...this.vcpus.values()].sort((a, b) => a.index - b.index);
  }

  setMemorySlot(slot: MemorySlot): void {
    this.live();
    const { guestAddress: gpa, size, hostAddress: hva } = slot;
    const bad = (why: string): never => {
      throw new KvmError('InvalidArgument', `memory slot ${slot.slot}: ${why}`, { slot: slot.slot });
    };
    if (!Number.isInteger(slot.slot) || slot.slot < 0 || slot.slot > 0xffff) bad(`slot number must be 0..65535`);
    if (slot.slot >= this.capabilities.maxMemorySlots && this.capabilities.maxMemorySlots > 0)
      bad(`KVM allows ${this.capabilities.maxMemorySlots} slots`);
    if (size <= 0n || size % PAGE !== 0n) bad(`size 0x${size.toString(16)} must be a positive multiple of 4 KiB`);
    if (gpa < 0n || gpa % PAGE !== 0n || gpa + size - 1n > U64_MAX)
      bad(`guest address 0x${gpa.toString(16)} must be 4 KiB aligned and in range`);
    if (hva <= 0n || hva % PAGE !== 0n || hva + size - 1n > U64_MAX)
      bad(`host address 0x${hva.toString(16)} must be a 4 KiB aligned mapping`);
    for (const other of this.slots.values()) {
      if (other.slot !== slot.slot && gpa < other.guestAddress + other.size && other.guestAddress < gpa + size) {
        bad(`[0x${gpa.toString(16)}, +0x${size.toString(16)}) overlaps slot ${other.slot}`);
      }
    }
    this.writeSlot(
      slot.slot,
      (slot.logDirtyPages ? MEM_LOG_DIRTY_PAGES : 0) | (slot.readOnly ? MEM_READONLY : 0),
      gpa,
      size,
      hva,
    );
    this.slots.set(slot.slot, { ...slot });
  }

  private writeSlot(slot: number, flags: number, gpa: bigint, size: bigint, hva: bigint): void {
    const { buf, view } = alloc(S.kvm_userspace_memory_region);
    const o = (f: string): number => offsetOf(S.kvm_userspace_memory_region, f);
    view.setUint32(o('slot'), slot, true);
    view.setUint32(o('flags'), flags, true);
    view.setBigUint64(o('guest_phys_addr'), gpa, true);
    view.setBigUint64(o('memory_size'), size, true);
    view.setBigUint64(o('userspace_addr'), hva, true);
    ioctlBuf(this.fd, 'SET_USER_MEMORY_REGION', buf);
  }

  removeMemorySlot(slot: number): void {
    this.live();
    const s = this.slots.get(slot);
    if (!s) throw new KvmError('InvalidArgument', `memory slot ${slot} does not exist`, { slot });
    this.writeSlot(slot, 0, s.guestAddress, 0n, s.hostAddress); // size 0 deletes the slot
    this.slots.delete(slot);
  }

  getDirtyLog(slot: number): BigUint64Array {
    this.live();
    const s = this.slots.get(slot);
    if (!s) throw new KvmError('InvalidArgument', `memory slot ${slot} does not exist`, { slot });
    if (!s.logDirtyPages)
      throw new KvmError('InvalidArgument', `memory slot ${slot} was not created with logDirtyPages`, { slot });
    const pages = Number(s.size / PAGE);
    // An explicit ArrayBuffer of >= 128 bytes lives off the V8 heap, so its address is stable.
    const words = Math.ceil(pages / 64);
    const bitmap = new BigUint64Array(new ArrayBuffer(Math.max(words * 8, 128)), 0, words);
    const { buf, view } = alloc(S.kvm_dirty_log);
    view.setUint32(offsetOf(S.kvm_dirty_log, 'slot'), slot, true);
    // SAFETY: the kernel writes ceil(pages/64)*8 bytes at this address during the call only; `bitmap` outlives it.
    view.setBigUint64(offsetOf(S.kvm_dirty_log, 'dirty_bitmap'), addressOf(bitmap), true);
    ioctlBuf(this.fd, 'GET_DIRTY_LOG', buf);
    return bitmap;
  }

  /**
   * Creates the in-kernel irqchip and what the arch adds to it (x86: PIC, IOAPIC, LAPICs, then the PIT).
   * The kvm plugin, the irqchip's one owner, calls it when it creates the VM. Idempotent.
   */
  createIrqChip(): void {
    this.live();
    if (this.irqchip) return;
    const arch = this.arch_();
    if (arch.createIrqChip) arch.createIrqChip();
    else ioctlNum(this.fd, 'CREATE_IRQCHIP');
    this.irqchip = true;
    this.arch_().afterIrqChip();
  }

  setIrqLine(gsi: number, level: boolean): void {
    this.live();
    const { buf, view } = alloc(S.kvm_irq_level);
    const irq = this.arch_().irqLine?.(checkGsi(gsi)) ?? checkGsi(gsi);
    view.setUint32(offsetOf(S.kvm_irq_level, 'irq'), irq, true);
    view.setUint32(offsetOf(S.kvm_irq_level, 'level'), level ? 1 : 0, true);
    ioctlBuf(this.fd, 'IRQ_LINE', buf);
  }

  setGsiRouting(routes: GsiRoute[]): void {
    this.live();
    const hdr = S.kvm_irq_routing.size,
      esz = S.kvm_irq_routing_entry.size;
    const { buf, view } = alloc(hdr + routes.length * esz);
    view.setUint32(offsetOf(S.kvm_irq_routing, 'nr'), routes.length, true);
    routes.forEach((r, i) => {
      const at = hdr + i * esz;
      const o = (f: string): number => at + offsetOf(S.kvm_irq_routing_entry, f);
      view.setUint32(o('gsi'), checkGsi(r.gsi), true);
      if (r.kind === 'irqchip') {
        if (![IRQCHIP_PIC_MASTER, IRQCHIP_PIC_SLAVE, IRQCHIP_IOAPIC].includes(r.chip))
          throw new KvmError('InvalidArgument', `route for GSI ${r.gsi}: unknown irqchip ${r.chip}`);
        view.setUint32(o('type'), IRQ_ROUTING_IRQCHIP, true);
        view.setUint32(o('u.irqchip.irqchip'), r.chip, true);
        view.setUint32(o('u.irqchip.pin'), r.pin >>> 0, true);
      } else {
        view.setUint32(o('type'), IRQ_ROUTING_MSI, true);
        view.setUint32(o('u.msi.address_lo'), Number(r.address & 0xffffffffn), true);
        view.setUint32(o('u.msi.address_hi'), Number((r.address >> 32n) & 0xffffffffn), true);
        view.setUint32(o('u.msi.data'), r.data >>> 0, true);
        if (r.devid !== undefined) {
          view.setUint32(o('flags'), MSI_VALID_DEVID, true);
          view.setUint32(o('u.msi.devid'), r.devid >>> 0, true);
        }
      }
    });
    ioctlBuf(this.fd, 'SET_GSI_ROUTING', buf);
  }

  signalMsi(msg: { address: bigint; data: number }): void {
    this.live();
    const { buf, view } = alloc(S.kvm_msi);
    view.setUint32(offsetOf(S.kvm_msi, 'address_lo'), Number(msg.address & 0xffffffffn), true);
    view.setUint32(offsetOf(S.kvm_msi, 'address_hi'), Number((msg.address >> 32n) & 0xffffffffn), true);
    view.setUint32(offsetOf(S.kvm_msi, 'data'), msg.data >>> 0, true);
    ioctlBuf(this.fd, 'SIGNAL_MSI', buf); // 0 = the guest blocked it (not an error)
  }

  private irqfd(fd: EventFdLike, gsi: number, flags: number, resample?: EventFdLike): void {
    this.live();
    const { buf, view } = alloc(S.kvm_irqfd);
    view.setUint32(offsetOf(S.kvm_irqfd, 'fd'), fd.fd, true);
    view.setUint32(offsetOf(S.kvm_irqfd, 'gsi'), checkGsi(gsi), true);
    view.setUint32(offsetOf(S.kvm_irqfd, 'flags'), flags | (resample ? IRQFD_FLAG_RESAMPLE : 0), true);
    if (resample) view.setUint32(offsetOf(S.kvm_irqfd, 'resamplefd'), resample.fd, true);
    const op = () => void ioctlBuf(this.fd, 'IRQFD', buf);
    if (!this.arch_().deferIrqfd?.(op)) op();
  }

  registerIrqfd(fd: EventFdLike, gsi: number, resampleFd?: EventFdLike): void {
    this.irqfd(fd, gsi, 0, resampleFd);
  }
  unregisterIrqfd(fd: EventFdLike, gsi: number): void {
    this.irqfd(fd, gsi, IRQFD_FLAG_DEASSIGN);
  }

  private ioeventfd(fd: EventFdLike, at: IoEventRegistration, deassign: boolean): void {
    this.live();
    if (![0, 1, 2, 4, 8].includes(at.length))
      throw new KvmError('InvalidArgument', `ioeventfd length ${at.length} must be 0, 1, 2, 4 or 8`);
    if (at.space === 'pio' && (at.address < 0n || at.address + BigInt(at.length) > 0x10000n))
      throw new KvmError('InvalidArgument', `ioeventfd port 0x${at.address.toString(16)} out of range`);
    if (at.address < 0n || at.address > U64_MAX)
      throw new KvmError('InvalidArgument', `ioeventfd address out of range`);
    const { buf, view } = alloc(S.kvm_ioeventfd);
    let flags = (at.space === 'pio' ? IOEVENTFD_FLAG_PIO : 0) | (deassign ? IOEVENTFD_FLAG_DEASSIGN : 0);
    if (at.datamatch !== undefined) {
      flags |= IOEVENTFD_FLAG_DATAMATCH;
      view.setBigUint64(offsetOf(S.kvm_ioeventfd, 'datamatch'), BigInt.asUintN(64, at.datamatch), true);
    }
    view.setBigUint64(offsetOf(S.kvm_ioeventfd, 'addr'), at.address, true);
    view.setUint32(offsetOf(S.kvm_ioeventfd, 'len'), at.length, true);
    view.setInt32(offsetOf(S.kvm_ioeventfd, 'fd'), fd.fd, true);
    view.setUint32(offsetOf(S.kvm_ioeventfd, 'flags'), flags, true);
    ioctlBuf(this.fd, 'IOEVENTFD', buf);
  }

  registerIoeventfd(fd: EventFdLike, at: IoEventRegistration): void {
    this.ioeventfd(fd, at, false);
  }
  unregisterIoeventfd(fd: EventFdLike, at: IoEventRegistration): void {
    this.ioeventfd(fd, at, true);
  }

  createVcpu(index: number): Vcpu {
    return this.createKvmVcpu(index);
  }

  /** Like createVcpu, typed as the KVM class (the runner needs its fd and mmap size). */
  createKvmVcpu(index: number): KvmVcpu {
    this.live();
    if (
      !Number.isInteger(index) ||
      index < 0 ||
      (this.capabilities.maxVcpus > 0 && index >= this.capabilities.maxVcpus)
    ) {
      throw new KvmError('InvalidArgument', `vCPU index ${index} must be in 0..${this.capabilities.maxVcpus - 1}`, {
        index,
      });
    }
    if (this.vcpus.has(index)) throw new KvmError('InvalidArgument', `vCPU ${index} already exists`, { index });
    // The vcpu id is the index, so its initial APIC ID is the index too.
    const fd = ioctlNum(this.fd, 'CREATE_VCPU', index);
    let v: KvmVcpu;
    try {
      v = new KvmVcpu(index, fd, this.vcpuMmapSize, true, undefined, hostKvmArch());
    } catch (e) {
      c.close(fd);
      throw e;
    }
    this.vcpus.set(index, v);
    return v;
  }

  /** The hypervisor's opaque per-VM state (x86: kvmclock, PICs, IOAPIC, PIT), as versioned blobs. */
  saveState(): Record<string, Uint8Array> {
    this.live();
    return this.arch_().saveState();
  }

  /** Restores saveState's blobs; all are checked before the first ioctl (KvmError 'InvalidArgument'). */
  restoreState(s: Record<string, Uint8Array>): void {
    this.live();
    this.arch_().restoreState(s);
  }

  close(): void {
    if (this.closed) return;
    for (const v of this.vcpus.values()) v.close();
    this.vcpus.clear();
    this.archPart?.close?.();
    this.closed = true;
    c.close(this.fd);
  }
}

function checkGsi(gsi: number): number {
  if (!Number.isInteger(gsi) || gsi < 0 || gsi > 0xffffff)
    throw new KvmError('InvalidArgument', `GSI ${gsi} out of range`, { gsi });
  return gsi;
}
