/**
 * The arm64 part of the KVM ABI: the structs, ioctl numbers and constants only an aarch64 host uses
 * (vCPU init with the preferred target, one-reg access, the device API for the GICv3 and its ITS, IRQ line
 * encoding, register ids). Generic ioctls (KVM_RUN, memory slots, irqfd, ioeventfd...) and kvm_run are
 * shared with x86 (../abi); their layouts are the same on both LP64 ABIs. arm64.layout.test.ts compares
 * every number and offset here with gcc over Debian's arm64 kernel headers (linux-libc-dev-arm64-cross).
 */
import { array, struct } from '../abi/layout.js';
import { KVMIO, _IOR, _IOW, _IOWR } from '../abi/ioctls.js';

const u32 = 'u32',
  u64 = 'u64';

/** struct kvm_vcpu_init: the target CPU type and the feature bitmap of KVM_ARM_VCPU_INIT. */
export const kvm_vcpu_init = struct('kvm_vcpu_init', [
  ['target', u32],
  ['features', array(u32, 7)],
]);
/** struct kvm_one_reg: a register id and the user address its value is read from / written to. */
export const kvm_one_reg = struct('kvm_one_reg', [
  ['id', u64],
  ['addr', u64],
]);
/** struct kvm_create_device: the device type in, the new device's fd out. */
export const kvm_create_device = struct('kvm_create_device', [
  ['type', u32],
  ['fd', u32],
  ['flags', u32],
]);
/** struct kvm_device_attr: one attribute of an in-kernel device (group, attr) and the address of its value. */
export const kvm_device_attr = struct('kvm_device_attr', [
  ['flags', u32],
  ['group', u32],
  ['attr', u64],
  ['addr', u64],
]);
/** struct kvm_reg_list's fixed head (`n`, then n register ids). */
export const kvm_reg_list = struct('kvm_reg_list', [['n', u64]]);

/** Every arm64-only struct by its C name, for the layout test. */
export const ARM64_STRUCTS = { kvm_vcpu_init, kvm_one_reg, kvm_create_device, kvm_device_attr, kvm_reg_list };

/** arm64-only request numbers (the vCPU init and one-reg calls, the device API), by C name without KVM_. */
export const KVM_ARM64 = {
  GET_ONE_REG: _IOW(KVMIO, 0xab, kvm_one_reg),
  SET_ONE_REG: _IOW(KVMIO, 0xac, kvm_one_reg),
  ARM_VCPU_INIT: _IOW(KVMIO, 0xae, kvm_vcpu_init),
  ARM_PREFERRED_TARGET: _IOR(KVMIO, 0xaf, kvm_vcpu_init),
  GET_REG_LIST: _IOWR(KVMIO, 0xb0, kvm_reg_list),
  CREATE_DEVICE: _IOWR(KVMIO, 0xe0, kvm_create_device),
  SET_DEVICE_ATTR: _IOW(KVMIO, 0xe1, kvm_device_attr),
  GET_DEVICE_ATTR: _IOW(KVMIO, 0xe2, kvm_device_attr),
  HAS_DEVICE_ATTR: _IOW(KVMIO, 0xe3, kvm_device_attr),
} as const;

/** The C name (without KVM_) of one request in KVM_ARM64. */
export type KvmArm64IoctlName = keyof typeof KVM_ARM64;

/** kvm_vcpu_init.features bit numbers (KVM_ARM_VCPU_*). */
export const ARM_VCPU_FEATURE = { POWER_OFF: 0, EL1_32BIT: 1, PSCI_0_2: 2, PMU_V3: 3 } as const;

/** Capabilities the arm64 machine checks (KVM_CAP_*), beside the generic ones in ../abi/caps.ts. */
export const KVM_CAP_ARM64 = {
  KVM_CAP_ONE_REG: 70,
  KVM_CAP_ARM_PSCI: 87,
  KVM_CAP_DEVICE_CTRL: 89,
  KVM_CAP_ARM_PSCI_0_2: 102,
  KVM_CAP_ARM_PMU_V3: 126,
} as const;

/** kvm_create_device.type values of the ARM interrupt controllers (enum kvm_device_type). */
export const DEV_TYPE = { ARM_VGIC_V2: 5, ARM_VGIC_V3: 7, ARM_VGIC_ITS: 8 } as const;

/** The vGIC device's attribute groups and values (KVM_DEV_ARM_VGIC_*, KVM_VGIC_V3_ADDR_TYPE_*, ...). */
export const VGIC = {
  GRP_ADDR: 0,
  GRP_NR_IRQS: 3,
  GRP_CTRL: 4,
  CTRL_INIT: 0,
  V3_ADDR_TYPE_DIST: 2,
  V3_ADDR_TYPE_REDIST: 3,
  ITS_ADDR_TYPE: 4,
  V3_DIST_SIZE: 0x10000,
  /** One redistributor = RD_base + SGI_base frames, 64 KiB each (KVM_VGIC_V3_REDIST_SIZE). */
  V3_REDIST_SIZE: 0x20000,
  /** The ITS's register frame + translation register frame (KVM_VGIC_V3_ITS_SIZE). */
  V3_ITS_SIZE: 0x20000,
} as const;

/** KVM_IRQ_LINE's irq field on arm64: type << 24 | vcpu << 16 | number (KVM_ARM_IRQ_*). */
export const ARM_IRQ = { TYPE_SHIFT: 24, VCPU_SHIFT: 16, TYPE_CPU: 0, TYPE_SPI: 1, TYPE_PPI: 2 } as const;

/** The number of private interrupts (SGIs + PPIs) before the first SPI: KVM's irqfd GSI g is INTID g + 32. */
export const GIC_PRIVATE_IRQS = 32;

/**
 * KVM_IRQ_LINE's irq word for SPI `spi` (0-based, i.e. INTID spi + 32), the form a device tree's
 * `interrupts = <0 spi flags>` names.
 */
export function spiIrqLine(spi: number): number {
  if (!Number.isInteger(spi) || spi < 0 || spi > 0xffff - GIC_PRIVATE_IRQS) throw new RangeError(`bad SPI ${spi}`);
  return ((ARM_IRQ.TYPE_SPI << ARM_IRQ.TYPE_SHIFT) | (spi + GIC_PRIVATE_IRQS)) >>> 0;
}

/** One-reg id fields (<linux/kvm.h>, <asm/kvm.h>). */
export const REG = {
  ARM64: 0x6000000000000000n,
  SIZE_U32: 0x0020000000000000n,
  SIZE_U64: 0x0030000000000000n,
  SIZE_U128: 0x0040000000000000n,
  /** Coprocessor 16: the registers of struct kvm_regs, indexed by their offset / 4. */
  ARM_CORE: 0x0010n << 16n,
  ARM64_SYSREG: 0x0013n << 16n,
} as const;

/** Byte offsets inside struct kvm_regs (asm/kvm.h + user_pt_regs); x0..x30 at 8 * n. */
export const KVM_REGS_OFFSET = {
  'regs.sp': 248,
  'regs.pc': 256,
  'regs.pstate': 264,
  sp_el1: 272,
  elr_el1: 280,
  spsr: 288,
  fp_regs: 336,
} as const;

/** The one-reg id of a 64-bit core register at byte `offset` of struct kvm_regs (KVM_REG_ARM_CORE_REG). */
export function coreRegId(offset: number): bigint {
  if (offset % 4 !== 0 || offset < 0 || offset >= 0x400) throw new RangeError(`bad kvm_regs offset ${offset}`);
  return REG.ARM64 | REG.SIZE_U64 | REG.ARM_CORE | BigInt(offset / 4);
}

/** The one-reg id of general register x`n` (0..30). */
export function xRegId(n: number): bigint {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError(`no register x${n}`);
  return coreRegId(8 * n);
}

/** The one-reg id of a 64-bit AArch64 system register by its encoding (ARM64_SYS_REG). */
export function sysRegId(op0: number, op1: number, crn: number, crm: number, op2: number): bigint {
  const f = (v: number, shift: number, mask: number): bigint => BigInt((v << shift) & mask);
  return (
    REG.ARM64 |
    REG.SIZE_U64 |
    REG.ARM64_SYSREG |
    f(op0, 14, 0xc000) |
    f(op1, 11, 0x3800) |
    f(crn, 7, 0x780) |
    f(crm, 3, 0x78) |
    f(op2, 0, 0x7)
  );
}

/** Registers the machine reads or sets, by name. */
export const ARM64_REG = {
  pc: coreRegId(KVM_REGS_OFFSET['regs.pc']),
  pstate: coreRegId(KVM_REGS_OFFSET['regs.pstate']),
  sp: coreRegId(KVM_REGS_OFFSET['regs.sp']),
  x0: xRegId(0),
  /** MPIDR_EL1 (op0 3, op1 0, CRn 0, CRm 0, op2 5): the vCPU's affinity, read for the device tree's `reg`. */
  mpidr: sysRegId(3, 0, 0, 0, 5),
} as const;

/** PSTATE bits (asm/ptrace.h): EL1 with SP_EL1, and the D, A, I, F exception masks. */
export const PSTATE = {
  MODE_EL1h: 0x5,
  F: 0x40,
  I: 0x80,
  A: 0x100,
  D: 0x200,
  /** What the arm64 boot protocol asks for at entry: EL1h with every exception masked (0x3c5). */
  BOOT: 0x3c5,
} as const;
