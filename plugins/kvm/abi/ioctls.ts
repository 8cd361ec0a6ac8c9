/**
 * KVM ioctl request numbers, built like <asm-generic/ioctl.h> does:
 * dir (2 bits) << 30 | size (14 bits) << 16 | type (8 bits) << 8 | nr (8 bits).
 * Sizes come from the struct layouts in ./structs.ts, so a layout change moves
 * the number with it; layout.test.ts compares every number with gcc's.
 */
import { sizeOf, type StructDef } from './layout.js';
import * as S from './structs.js';

/** ioctl direction bits (<asm-generic/ioctl.h>): no data, userspace writes to the kernel, the kernel writes back. */
export const IOC_NONE = 0,
  IOC_WRITE = 1,
  IOC_READ = 2;
const NRBITS = 8,
  TYPEBITS = 8,
  SIZEBITS = 14;
const NRSHIFT = 0,
  TYPESHIFT = NRSHIFT + NRBITS,
  SIZESHIFT = TYPESHIFT + TYPEBITS,
  DIRSHIFT = SIZESHIFT + SIZEBITS;

/** Unsigned 32-bit request number (a JS number; `>>> 0` keeps it positive for `unsigned long`). */
export function _IOC(dir: number, type: number, nr: number, size: number): number {
  if (size < 0 || size >= 1 << SIZEBITS) throw new RangeError(`ioctl size ${size} does not fit ${SIZEBITS} bits`);
  return ((dir << DIRSHIFT) | (size << SIZESHIFT) | (type << TYPESHIFT) | (nr << NRSHIFT)) >>> 0;
}
const sz = (t: StructDef | number): number => (typeof t === 'number' ? t : sizeOf(t));
/** Request number of an ioctl without a data argument. */
export const _IO = (type: number, nr: number): number => _IOC(IOC_NONE, type, nr, 0);
/** Request number of an ioctl the kernel answers into a `t`-sized buffer. */
export const _IOR = (type: number, nr: number, t: StructDef | number): number => _IOC(IOC_READ, type, nr, sz(t));
/** Request number of an ioctl that passes a `t`-sized buffer to the kernel. */
export const _IOW = (type: number, nr: number, t: StructDef | number): number => _IOC(IOC_WRITE, type, nr, sz(t));
/** Request number of an ioctl that passes a `t`-sized buffer and gets it back updated. */
export const _IOWR = (type: number, nr: number, t: StructDef | number): number =>
  _IOC(IOC_READ | IOC_WRITE, type, nr, sz(t));

/** The ioctl type byte of every KVM request. */
export const KVMIO = 0xae;

/** Request numbers by their C names. */
export const KVM = {
  // system (/dev/kvm)
  GET_API_VERSION: _IO(KVMIO, 0x00),
  CREATE_VM: _IO(KVMIO, 0x01),
  CHECK_EXTENSION: _IO(KVMIO, 0x03),
  GET_VCPU_MMAP_SIZE: _IO(KVMIO, 0x04),
  GET_SUPPORTED_CPUID: _IOWR(KVMIO, 0x05, S.kvm_cpuid2),
  // vm
  CREATE_VCPU: _IO(KVMIO, 0x41),
  GET_DIRTY_LOG: _IOW(KVMIO, 0x42, S.kvm_dirty_log),
  SET_USER_MEMORY_REGION: _IOW(KVMIO, 0x46, S.kvm_userspace_memory_region),
  SET_TSS_ADDR: _IO(KVMIO, 0x47),
  SET_IDENTITY_MAP_ADDR: _IOW(KVMIO, 0x48, 8),
  CREATE_IRQCHIP: _IO(KVMIO, 0x60),
  IRQ_LINE: _IOW(KVMIO, 0x61, S.kvm_irq_level),
  GET_IRQCHIP: _IOWR(KVMIO, 0x62, S.kvm_irqchip),
  SET_IRQCHIP: _IOR(KVMIO, 0x63, S.kvm_irqchip),
  IRQ_LINE_STATUS: _IOWR(KVMIO, 0x67, S.kvm_irq_level),
  SET_GSI_ROUTING: _IOW(KVMIO, 0x6a, S.kvm_irq_routing),
  IRQFD: _IOW(KVMIO, 0x76, S.kvm_irqfd),
  CREATE_PIT2: _IOW(KVMIO, 0x77, S.kvm_pit_config),
  IOEVENTFD: _IOW(KVMIO, 0x79, S.kvm_ioeventfd),
  SET_CLOCK: _IOW(KVMIO, 0x7b, S.kvm_clock_data),
  GET_CLOCK: _IOR(KVMIO, 0x7c, S.kvm_clock_data),
  GET_PIT2: _IOR(KVMIO, 0x9f, S.kvm_pit_state2),
  SET_PIT2: _IOW(KVMIO, 0xa0, S.kvm_pit_state2),
  SIGNAL_MSI: _IOW(KVMIO, 0xa5, S.kvm_msi),
  ENABLE_CAP: _IOW(KVMIO, 0xa3, S.kvm_enable_cap),
  // vcpu
  RUN: _IO(KVMIO, 0x80),
  GET_REGS: _IOR(KVMIO, 0x81, S.kvm_regs),
  SET_REGS: _IOW(KVMIO, 0x82, S.kvm_regs),
  GET_SREGS: _IOR(KVMIO, 0x83, S.kvm_sregs),
  SET_SREGS: _IOW(KVMIO, 0x84, S.kvm_sregs),
  GET_MSRS: _IOWR(KVMIO, 0x88, S.kvm_msrs),
  SET_MSRS: _IOW(KVMIO, 0x89, S.kvm_msrs),
  GET_FPU: _IOR(KVMIO, 0x8c, S.kvm_fpu),
  SET_FPU: _IOW(KVMIO, 0x8d, S.kvm_fpu),
  GET_LAPIC: _IOR(KVMIO, 0x8e, S.kvm_lapic_state),
  SET_LAPIC: _IOW(KVMIO, 0x8f, S.kvm_lapic_state),
  SET_CPUID2: _IOW(KVMIO, 0x90, S.kvm_cpuid2),
  GET_CPUID2: _IOWR(KVMIO, 0x91, S.kvm_cpuid2),
  GET_MP_STATE: _IOR(KVMIO, 0x98, S.kvm_mp_state),
  SET_MP_STATE: _IOW(KVMIO, 0x99, S.kvm_mp_state),
  GET_VCPU_EVENTS: _IOR(KVMIO, 0x9f, S.kvm_vcpu_events),
  SET_VCPU_EVENTS: _IOW(KVMIO, 0xa0, S.kvm_vcpu_events),
  GET_DEBUGREGS: _IOR(KVMIO, 0xa1, S.kvm_debugregs),
  SET_DEBUGREGS: _IOW(KVMIO, 0xa2, S.kvm_debugregs),
  GET_XSAVE: _IOR(KVMIO, 0xa4, S.kvm_xsave),
  SET_XSAVE: _IOW(KVMIO, 0xa5, S.kvm_xsave),
  GET_XCRS: _IOR(KVMIO, 0xa6, S.kvm_xcrs),
  SET_XCRS: _IOW(KVMIO, 0xa7, S.kvm_xcrs),
  KVMCLOCK_CTRL: _IO(KVMIO, 0xad),
} as const;

/** The C name (without KVM_) of one request in KVM. */
export type KvmIoctlName = keyof typeof KVM;

/** Well-known magic values, kept beside the computed ones as a cross-check in tests. */
export const KNOWN = {
  CREATE_VM: 0xae01,
  RUN: 0xae80,
  SET_USER_MEMORY_REGION: 0x4020ae46,
  GET_REGS: 0x8090ae81,
} as const;

// ---- constants of the ABI ----
/** The KVM_GET_API_VERSION answer the plugin requires (12, unchanged since Linux 2.6.22). */
export const KVM_API_VERSION = 12;

/** kvm_run.exit_reason values (KVM_EXIT_*). */
export const EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
  IOAPIC_EOI: 26,
  HYPERV: 27,
  X86_RDMSR: 29,
  X86_WRMSR: 30,
  DIRTY_RING_FULL: 31,
  X86_BUS_LOCK: 33,
  NOTIFY: 37,
} as const;
/** kvm_run.io.direction values. */
export const EXIT_IO_IN = 0,
  EXIT_IO_OUT = 1;
/** kvm_run.system_event.type values (KVM_SYSTEM_EVENT_*): why the guest asked to stop. */
export const SYSTEM_EVENT = { SHUTDOWN: 1, RESET: 2, CRASH: 3, WAKEUP: 4, SUSPEND: 5, SEV_TERM: 6 } as const;
/** kvm_mp_state.mp_state values (KVM_MP_STATE_*). */
export const MP_STATE = {
  RUNNABLE: 0,
  UNINITIALIZED: 1,
  INIT_RECEIVED: 2,
  HALTED: 3,
  SIPI_RECEIVED: 4,
  STOPPED: 5,
} as const;
/**
 * kvm_userspace_memory_region.flags: track writes for KVM_GET_DIRTY_LOG; map the slot read-only (writes exit as MMIO).
 */
export const MEM_LOG_DIRTY_PAGES = 1,
  MEM_READONLY = 2;
/** kvm_irqchip.chip_id and kvm_irq_routing_irqchip.irqchip values: the two 8259 PICs and the IOAPIC. */
export const IRQCHIP_PIC_MASTER = 0,
  IRQCHIP_PIC_SLAVE = 1,
  IRQCHIP_IOAPIC = 2;
/** kvm_irq_routing_entry.type values: a pin of an in-kernel irqchip, or an MSI message. */
export const IRQ_ROUTING_IRQCHIP = 1,
  IRQ_ROUTING_MSI = 2;
/** kvm_msi / kvm_irq_routing_msi flag: the devid field is valid. */
export const MSI_VALID_DEVID = 1;
/** kvm_irqfd.flags: remove the irqfd; level-triggered with a resample eventfd. */
export const IRQFD_FLAG_DEASSIGN = 1,
  IRQFD_FLAG_RESAMPLE = 2;
/** kvm_ioeventfd.flags: signal only on a write of `datamatch`; the address is a PIO port; remove the ioeventfd. */
export const IOEVENTFD_FLAG_DATAMATCH = 1,
  IOEVENTFD_FLAG_PIO = 2,
  IOEVENTFD_FLAG_DEASSIGN = 4;
/** kvm_pit_config.flags: emulate a dummy PC speaker port (0x61) in the kernel. */
export const PIT_SPEAKER_DUMMY = 1;
/** kvm_cpuid_entry2.flags: the entry applies to one subleaf (`index` matters). */
export const CPUID_FLAG_SIGNIFICANT_INDEX = 1;
