/**
 * KVM ABI structs for x86_64, declared member by member in the order of
 * <linux/kvm.h> and <asm/kvm.h> (see the kernel's Documentation/virt/kvm/api.rst).
 * Offsets are computed by ./layout.ts and checked against gcc in layout.test.ts.
 */
import { array, struct, union, type StructDef } from './layout.js';

const u8 = 'u8',
  u16 = 'u16',
  u32 = 'u32',
  u64 = 'u64',
  i32 = 'i32',
  i64 = 'i64';

// ---- kvm_run: the per-vCPU page shared with the kernel (mmap of the vcpu fd). ----
const exitHw = struct('hw', [['hardware_exit_reason', u64]]);
const exitFailEntry = struct('fail_entry', [
  ['hardware_entry_failure_reason', u64],
  ['cpu', u32],
]);
const exitEx = struct('ex', [
  ['exception', u32],
  ['error_code', u32],
]);
const exitIo = struct('io', [
  ['direction', u8],
  ['size', u8],
  ['port', u16],
  ['count', u32],
  ['data_offset', u64],
]);
/** The x86 debug exit details in kvm_run (exception vector, rip, DR6, DR7) for KVM_EXIT_DEBUG. */
export const kvm_debug_exit_arch = struct('kvm_debug_exit_arch', [
  ['exception', u32],
  ['pad', u32],
  ['pc', u64],
  ['dr6', u64],
  ['dr7', u64],
]);
const exitDebug = struct('debug', [['arch', kvm_debug_exit_arch]]);
const exitMmio = struct('mmio', [
  ['phys_addr', u64],
  ['data', array(u8, 8)],
  ['len', u32],
  ['is_write', u8],
]);
const exitHypercall = struct('hypercall', [
  ['nr', u64],
  ['args', array(u64, 6)],
  ['ret', u64],
  ['longmode', u32],
  ['pad', u32],
]);
const exitInternal = struct('internal', [
  ['suberror', u32],
  ['ndata', u32],
  ['data', array(u64, 16)],
]);
const exitEmulationFailure = struct('emulation_failure', [
  ['suberror', u32],
  ['ndata', u32],
  ['flags', u64],
  [
    null,
    union('', [
      [
        null,
        struct('', [
          ['insn_size', u8],
          ['insn_bytes', array(u8, 15)],
        ]),
      ],
    ]),
  ],
]);
const exitSystemEvent = struct('system_event', [
  ['type', u32],
  ['ndata', u32],
  [
    null,
    union('', [
      ['flags', u64],
      ['data', array(u64, 16)],
    ]),
  ],
]);
const exitUnion = union('', [
  ['hw', exitHw],
  ['fail_entry', exitFailEntry],
  ['ex', exitEx],
  ['io', exitIo],
  ['debug', exitDebug],
  ['mmio', exitMmio],
  ['hypercall', exitHypercall],
  ['internal', exitInternal],
  ['emulation_failure', exitEmulationFailure],
  ['system_event', exitSystemEvent],
  ['padding', array(u8, 256)],
]);
/**
 * The per-vCPU page shared with the kernel (mmap of the vCPU fd, KVM_GET_VCPU_MMAP_SIZE bytes): exit reason and
 * details, plus the I/O data area; valid while the vCPU fd is open.
 */
export const kvm_run = struct('kvm_run', [
  ['request_interrupt_window', u8],
  ['immediate_exit', u8],
  ['padding1', array(u8, 6)],
  ['exit_reason', u32],
  ['ready_for_interrupt_injection', u8],
  ['if_flag', u8],
  ['flags', u16],
  ['cr8', u64],
  ['apic_base', u64],
  [null, exitUnion],
  ['kvm_valid_regs', u64],
  ['kvm_dirty_regs', u64],
  ['s', union('', [['padding', array(u8, 2048)]])],
]);

// ---- registers ----
/** General-purpose registers, rip and rflags (KVM_GET_REGS / KVM_SET_REGS). */
export const kvm_regs = struct('kvm_regs', [
  ['rax', u64],
  ['rbx', u64],
  ['rcx', u64],
  ['rdx', u64],
  ['rsi', u64],
  ['rdi', u64],
  ['rsp', u64],
  ['rbp', u64],
  ['r8', u64],
  ['r9', u64],
  ['r10', u64],
  ['r11', u64],
  ['r12', u64],
  ['r13', u64],
  ['r14', u64],
  ['r15', u64],
  ['rip', u64],
  ['rflags', u64],
]);
/** One segment register as KVM holds it: base, limit, selector and the unpacked descriptor attributes. */
export const kvm_segment = struct('kvm_segment', [
  ['base', u64],
  ['limit', u32],
  ['selector', u16],
  ['type', u8],
  ['present', u8],
  ['dpl', u8],
  ['db', u8],
  ['s', u8],
  ['l', u8],
  ['g', u8],
  ['avl', u8],
  ['unusable', u8],
  ['padding', u8],
]);
/** A descriptor table register (GDTR, IDTR): base and limit. */
export const kvm_dtable = struct('kvm_dtable', [
  ['base', u64],
  ['limit', u16],
  ['padding', array(u16, 3)],
]);
/**
 * Segment, control and descriptor-table registers, EFER, APIC base and the pending interrupt bitmap (KVM_GET_SREGS /
 * KVM_SET_SREGS).
 */
export const kvm_sregs = struct('kvm_sregs', [
  ['cs', kvm_segment],
  ['ds', kvm_segment],
  ['es', kvm_segment],
  ['fs', kvm_segment],
  ['gs', kvm_segment],
  ['ss', kvm_segment],
  ['tr', kvm_segment],
  ['ldt', kvm_segment],
  ['gdt', kvm_dtable],
  ['idt', kvm_dtable],
  ['cr0', u64],
  ['cr2', u64],
  ['cr3', u64],
  ['cr4', u64],
  ['cr8', u64],
  ['efer', u64],
  ['apic_base', u64],
  ['interrupt_bitmap', array(u64, 4)],
]);
/** x87/SSE state in FXSAVE terms (KVM_GET_FPU / KVM_SET_FPU). */
export const kvm_fpu = struct('kvm_fpu', [
  ['fpr', array(array(u8, 16), 8)],
  ['fcw', u16],
  ['fsw', u16],
  ['ftwx', u8],
  ['pad1', u8],
  ['last_opcode', u16],
  ['last_ip', u64],
  ['last_dp', u64],
  ['xmm', array(array(u8, 16), 16)],
  ['mxcsr', u32],
  ['pad2', u32],
]);
/** One MSR index and value of a kvm_msrs list. */
export const kvm_msr_entry = struct('kvm_msr_entry', [
  ['index', u32],
  ['reserved', u32],
  ['data', u64],
]);
/** Header only: `entries` (kvm_msr_entry[nmsrs]) follows at offset 8. */
export const kvm_msrs = struct('kvm_msrs', [
  ['nmsrs', u32],
  ['pad', u32],
]);
/** One CPUID leaf/subleaf answer (eax..edx) of a kvm_cpuid2 list. */
export const kvm_cpuid_entry2 = struct('kvm_cpuid_entry2', [
  ['function', u32],
  ['index', u32],
  ['flags', u32],
  ['eax', u32],
  ['ebx', u32],
  ['ecx', u32],
  ['edx', u32],
  ['padding', array(u32, 3)],
]);
/** Header only: `entries` (kvm_cpuid_entry2[nent]) follows at offset 8. */
export const kvm_cpuid2 = struct('kvm_cpuid2', [
  ['nent', u32],
  ['padding', u32],
]);
/** The local APIC's 1 KiB register page (KVM_GET_LAPIC / KVM_SET_LAPIC). */
export const kvm_lapic_state = struct('kvm_lapic_state', [['regs', array(u8, 0x400)]]);
/** Pending exceptions, interrupts, NMIs and SMM state of a vCPU (KVM_GET_VCPU_EVENTS / KVM_SET_VCPU_EVENTS). */
export const kvm_vcpu_events = struct('kvm_vcpu_events', [
  [
    'exception',
    struct('', [
      ['injected', u8],
      ['nr', u8],
      ['has_error_code', u8],
      ['pending', u8],
      ['error_code', u32],
    ]),
  ],
  [
    'interrupt',
    struct('', [
      ['injected', u8],
      ['nr', u8],
      ['soft', u8],
      ['shadow', u8],
    ]),
  ],
  [
    'nmi',
    struct('', [
      ['injected', u8],
      ['pending', u8],
      ['masked', u8],
      ['pad', u8],
    ]),
  ],
  ['sipi_vector', u32],
  ['flags', u32],
  [
    'smi',
    struct('', [
      ['smm', u8],
      ['pending', u8],
      ['smm_inside_nmi', u8],
      ['latched_init', u8],
    ]),
  ],
  ['triple_fault', struct('', [['pending', u8]])],
  ['reserved', array(u8, 26)],
  ['exception_has_payload', u8],
  ['exception_payload', u64],
]);
/** The vCPU's multiprocessing state, a MP_STATE value (KVM_GET_MP_STATE / KVM_SET_MP_STATE). */
export const kvm_mp_state = struct('kvm_mp_state', [['mp_state', u32]]);
/** The 4 KiB XSAVE area (KVM_GET_XSAVE / KVM_SET_XSAVE). */
export const kvm_xsave = struct('kvm_xsave', [['region', array(u32, 1024)]]);
/** One extended control register (XCR0 ...) and its value. */
export const kvm_xcr = struct('kvm_xcr', [
  ['xcr', u32],
  ['reserved', u32],
  ['value', u64],
]);
/** The extended control registers of a vCPU (KVM_GET_XCRS / KVM_SET_XCRS). */
export const kvm_xcrs = struct('kvm_xcrs', [
  ['nr_xcrs', u32],
  ['flags', u32],
  ['xcrs', array(kvm_xcr, 16)],
  ['padding', array(u64, 16)],
]);
/** DR0-DR3, DR6, DR7 (KVM_GET_DEBUGREGS / KVM_SET_DEBUGREGS). */
export const kvm_debugregs = struct('kvm_debugregs', [
  ['db', array(u64, 4)],
  ['dr6', u64],
  ['dr7', u64],
  ['flags', u64],
  ['reserved', array(u64, 9)],
]);

// ---- VM-wide state ----
/** The VM's kvmclock value in nanoseconds (KVM_GET_CLOCK / KVM_SET_CLOCK). */
export const kvm_clock_data = struct('kvm_clock_data', [
  ['clock', u64],
  ['flags', u32],
  ['pad0', u32],
  ['realtime', u64],
  ['host_tsc', u64],
  ['pad', array(u32, 4)],
]);
/** One 8259 PIC's state, inside kvm_irqchip. */
export const kvm_pic_state = struct('kvm_pic_state', [
  ['last_irr', u8],
  ['irr', u8],
  ['imr', u8],
  ['isr', u8],
  ['priority_add', u8],
  ['irq_base', u8],
  ['read_reg_select', u8],
  ['poll', u8],
  ['special_mask', u8],
  ['init_state', u8],
  ['auto_eoi', u8],
  ['rotate_on_auto_eoi', u8],
  ['special_fully_nested_mode', u8],
  ['init4', u8],
  ['elcr', u8],
  ['elcr_mask', u8],
]);
/** The IOAPIC's state and redirection table, inside kvm_irqchip. */
export const kvm_ioapic_state = struct('kvm_ioapic_state', [
  ['base_address', u64],
  ['ioregsel', u32],
  ['id', u32],
  ['irr', u32],
  ['pad', u32],
  // Each redirection entry is a u64 overlaid with bitfields; we only address it as `bits`.
  ['redirtbl', array(union('', [['bits', u64]]), 24)],
]);
/** One in-kernel irqchip's state, selected by chip_id (KVM_GET_IRQCHIP / KVM_SET_IRQCHIP). */
export const kvm_irqchip = struct('kvm_irqchip', [
  ['chip_id', u32],
  ['pad', u32],
  [
    'chip',
    union('', [
      ['dummy', array(u8, 512)],
      ['pic', kvm_pic_state],
      ['ioapic', kvm_ioapic_state],
    ]),
  ],
]);
/** One 8254 PIT channel's state, inside kvm_pit_state2. */
export const kvm_pit_channel_state = struct('kvm_pit_channel_state', [
  ['count', u32],
  ['latched_count', u16],
  ['count_latched', u8],
  ['status_latched', u8],
  ['status', u8],
  ['read_state', u8],
  ['write_state', u8],
  ['write_latch', u8],
  ['rw_mode', u8],
  ['mode', u8],
  ['bcd', u8],
  ['gate', u8],
  ['count_load_time', i64],
]);
/** The in-kernel PIT's three channels and flags (KVM_GET_PIT2 / KVM_SET_PIT2). */
export const kvm_pit_state2 = struct('kvm_pit_state2', [
  ['channels', array(kvm_pit_channel_state, 3)],
  ['flags', u32],
  ['reserved', array(u32, 9)],
]);
/** How KVM_CREATE_PIT2 creates the in-kernel PIT (flags: PIT_SPEAKER_DUMMY). */
export const kvm_pit_config = struct('kvm_pit_config', [
  ['flags', u32],
  ['pad', array(u32, 15)],
]);

// ---- interrupts and eventfds ----
/** A GSI route to an irqchip pin. */
export const kvm_irq_routing_irqchip = struct('kvm_irq_routing_irqchip', [
  ['irqchip', u32],
  ['pin', u32],
]);
/** A GSI route to an MSI message (address, data, optional device id). */
export const kvm_irq_routing_msi = struct('kvm_irq_routing_msi', [
  ['address_lo', u32],
  ['address_hi', u32],
  ['data', u32],
  [
    null,
    union('', [
      ['pad', u32],
      ['devid', u32],
    ]),
  ],
]);
/** One GSI route of a kvm_irq_routing table: the GSI, its type and the irqchip or MSI target. */
export const kvm_irq_routing_entry = struct('kvm_irq_routing_entry', [
  ['gsi', u32],
  ['type', u32],
  ['flags', u32],
  ['pad', u32],
  [
    'u',
    union('', [
      ['irqchip', kvm_irq_routing_irqchip],
      ['msi', kvm_irq_routing_msi],
      ['pad', array(u32, 8)],
    ]),
  ],
]);
/** Header only: `entries` (kvm_irq_routing_entry[nr]) follows at offset 8. */
export const kvm_irq_routing = struct('kvm_irq_routing', [
  ['nr', u32],
  ['flags', u32],
]);
/** Binds an eventfd to a GSI: a write to it raises the interrupt (KVM_IRQFD; flags IRQFD_FLAG_*). */
export const kvm_irqfd = struct('kvm_irqfd', [
  ['fd', u32],
  ['gsi', u32],
  ['flags', u32],
  ['resamplefd', u32],
  ['pad', array(u8, 16)],
]);
/** Binds an eventfd to a guest PIO/MMIO address: a matching write signals it without an exit (KVM_IOEVENTFD). */
export const kvm_ioeventfd = struct('kvm_ioeventfd', [
  ['datamatch', u64],
  ['addr', u64],
  ['len', u32],
  ['fd', i32],
  ['flags', u32],
  ['pad', array(u8, 36)],
]);
/** Sets an irqchip input line (KVM_IRQ_LINE): the GSI and level 0 or 1. */
export const kvm_irq_level = struct('kvm_irq_level', [
  [
    null,
    union('', [
      ['irq', u32],
      ['status', i32],
    ]),
  ],
  ['level', u32],
]);
/** An MSI message to inject once (KVM_SIGNAL_MSI). */
export const kvm_msi = struct('kvm_msi', [
  ['address_lo', u32],
  ['address_hi', u32],
  ['data', u32],
  ['flags', u32],
  ['devid', u32],
  ['pad', array(u8, 12)],
]);

// ---- memory ----
/**
 * A memory slot: guest-physical range backed by host memory at userspace_addr (KVM_SET_USER_MEMORY_REGION; size 0
 * deletes the slot).
 */
export const kvm_userspace_memory_region = struct('kvm_userspace_memory_region', [
  ['slot', u32],
  ['flags', u32],
  ['guest_phys_addr', u64],
  ['memory_size', u64],
  ['userspace_addr', u64],
]);
/** Asks KVM_GET_DIRTY_LOG for a slot's dirty-page bitmap, written to the host address given. */
export const kvm_dirty_log = struct('kvm_dirty_log', [
  ['slot', u32],
  ['padding1', u32],
  [null, union('', [['dirty_bitmap', u64]])],
]);
/** Enables a capability with its arguments (KVM_ENABLE_CAP). */
export const kvm_enable_cap = struct('kvm_enable_cap', [
  ['cap', u32],
  ['flags', u32],
  ['args', array(u64, 4)],
  ['pad', array(u8, 64)],
]);

/** Every struct above by its C name (layout tests walk this). */
export const ALL_STRUCTS: Readonly<Record<string, StructDef>> = {
  kvm_run,
  kvm_regs,
  kvm_segment,
  kvm_dtable,
  kvm_sregs,
  kvm_fpu,
  kvm_msr_entry,
  kvm_msrs,
  kvm_cpuid_entry2,
  kvm_cpuid2,
  kvm_lapic_state,
  kvm_vcpu_events,
  kvm_mp_state,
  kvm_xsave,
  kvm_xcr,
  kvm_xcrs,
  kvm_debugregs,
  kvm_clock_data,
  kvm_pic_state,
  kvm_ioapic_state,
  kvm_irqchip,
  kvm_pit_channel_state,
  kvm_pit_state2,
  kvm_pit_config,
  kvm_irq_routing_irqchip,
  kvm_irq_routing_msi,
  kvm_irq_routing_entry,
  kvm_irq_routing,
  kvm_irqfd,
  kvm_ioeventfd,
  kvm_irq_level,
  kvm_msi,
  kvm_userspace_memory_region,
  kvm_dirty_log,
  kvm_enable_cap,
  kvm_debug_exit_arch,
};
