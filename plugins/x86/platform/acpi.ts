import { GuestAddress } from '../../../core/address.js';
import type { AcpiContribution, BuiltAcpiTables } from '../../../core/acpi/tables.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { X86Layout } from '../layout.js';
import * as aml from '../../acpi/aml/index.js';
import { X86BootError, hex } from '../errors.js';
import { IOAPIC_PINS, MPTABLE_MAX_VCPUS } from './mptable.js';

/**
 * The x86 platform's part of the ACPI tables, contributed to the acpi plugin's AcpiTables.
 * Kernels built without CONFIG_X86_MPPARSE (Debian's cloud kernel among them) find CPUs and
 * the IOAPIC only through the MADT; the MP table is still written for kernels without ACPI.
 *
 * Why not hardware-reduced ACPI (Firecracker, QEMU microvm): Linux then drops the legacy
 * PIC and numbers IOAPIC interrupts dynamically, so IRQ numbers stop being GSIs and every
 * device would have to be described in the DSDT (the command line's virtio_mmio.device=
 * IRQs, the 8250's IRQ 4, the i8042's IRQ 1 would all break). A full FADT keeps Linux's
 * legacy IRQ domain: IRQ n = GSI n = IOAPIC pin n, as KVM's default routing wires them.
 * It needs a PM1a event/control block, which plugins/x86/platform/pm.ts provides.
 *
 * What Linux does with this contribution:
 *  - FADT: SMI_CMD 0 (already in ACPI mode), SCI on IRQ 9 (raised only by the optional fixed power button),
 *    PM1a blocks at PM1_EVT_PORT / PM1_CNT_PORT, no PM timer, no GPE block, no sleep button; IAPC boot
 *    flags say an i8042 is present (else Linux drops the i8042 driver) and the CMOS RTC is, and do not say
 *    "MSI not supported" (Linux would then keep every PCI function on INTx).
 *  - MADT: one enabled LAPIC per vCPU (APIC id = vCPU index), the IOAPIC (GSI base 0),
 *    an override for the SCI (IRQ 9 edge/active-high, so a device may share GSI 9), LINT1 = NMI.
 *    ISA IRQs 0..15 get Linux's identity defaults.
 *  - DSDT: \_S5 (SLP_TYP 5: the PM device turns SLP_EN into a poweroff) and one PNP0C02
 *    device whose _CRS claims GSIs 16..23, so PNP-ACPI maps them (IRQ = GSI) for devices
 *    given those IRQs on the command line.
 * The machine builds the tables at ACPI_START, inside the e820-reserved legacy area.
 */
export const ACPI_START = 0xe_0000n;
/** End (exclusive) of the window the tables must fit: 64 KiB from ACPI_START. */
export const ACPI_END = 0xf_0000n;

/** IAPC_BOOT_ARCH flags (FADT). */
export const IAPC_BOOT_ARCH = {
  LEGACY_DEVICES: 1 << 0,
  I8042: 1 << 1,
  VGA_NOT_PRESENT: 1 << 2,
  MSI_NOT_SUPPORTED: 1 << 3,
  CMOS_RTC_NOT_PRESENT: 1 << 5,
} as const;
/** FADT fixed feature flags (ACPI 6.4, table 5.10) the x86 platform uses. */
export const FADT_FLAG = { WBINVD: 1 << 0, PWR_BUTTON: 1 << 4, SLP_BUTTON: 1 << 5 } as const;
/**
 * FADT flags the x86 platform sets: WBINVD works, no fixed power or sleep button (PWR_BUTTON set means "no fixed
 * power button"; x86AcpiContribution clears it when the machine has one).
 */
export const X86_FADT_FLAGS = FADT_FLAG.WBINVD | FADT_FLAG.PWR_BUTTON | FADT_FLAG.SLP_BUTTON;
/** x86 MADT interrupt controller structure types. */
export const MADT_TYPE = { LAPIC: 0, IOAPIC: 1, ISO: 2, LAPIC_NMI: 4 } as const;
/** MPS INTI flags: polarity active high (01), trigger edge (01 << 2). */
export const INTI_EDGE_HIGH = 0x5;
/** ISA IRQs; GSIs above are claimed through the DSDT. */
export const ISA_IRQS = 16;
/** The SCI (the fixed power button's interrupt when there is one); an edge/active-high override. */
export const SCI_IRQ = 9;
/** PM1a event block port: status + enable, 2 bytes each. */
export const PM1_EVT_PORT = 0x600;
/** PM1a event block length in bytes. */
export const PM1_EVT_LEN = 4;
/** PM1a control block port (2 bytes). */
export const PM1_CNT_PORT = 0x604;
/** PM1a control block length in bytes. */
export const PM1_CNT_LEN = 2;
/** SLP_TYP the DSDT's \_S5 announces. */
export const S5_SLP_TYP = 5;
/** The CMOS RTC's century register (FADT CENTURY). */
const CMOS_CENTURY = 0x32;
/** MADT flag: the platform also has dual 8259s (KVM's in-kernel PIC). */
const PCAT_COMPAT = 1;

/** One MADT entry: type, length, then `body`. */
function entry(type: number, body: readonly number[]): Uint8Array {
  return Uint8Array.from([type, body.length + 2, ...body]);
}
const le16 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff];
const le32 = (v: number): number[] => [...le16(v & 0xffff), ...le16(v >>> 16)];

/** The MADT entries: one LAPIC per vCPU, the IOAPIC after them, the SCI override, LINT1 = NMI. */
export function x86MadtEntries(vcpus: number): Uint8Array[] {
  const cpus = Array.from({ length: vcpus }, (_, i) => entry(MADT_TYPE.LAPIC, [i, i, ...le32(1)])); // enabled
  const ioapicId = vcpus; // after the CPUs, as in the MP table
  return [
    ...cpus,
    entry(MADT_TYPE.IOAPIC, [ioapicId, 0, ...le32(Number(X86Layout.IOAPIC)), ...le32(0)]), // GSI base 0
    entry(MADT_TYPE.ISO, [0 /* ISA bus */, SCI_IRQ, ...le32(SCI_IRQ), ...le16(INTI_EDGE_HIGH)]),
    entry(MADT_TYPE.LAPIC_NMI, [0xff /* every processor */, ...le16(0), 1 /* LINT1 */]),
  ];
}

/**
 * Name(\_S5, Package() { S5_SLP_TYP, S5_SLP_TYP, 0, 0 })
 * Scope(\_SB) { Device(GSIS) { _HID PNP0C02, _UID 0, _CRS { Interrupt { 16..23 } } } }
 */
export function x86Dsdt(): Uint8Array {
  const gsis = Array.from({ length: IOAPIC_PINS - ISA_IRQS }, (_, i) => ISA_IRQS + i);
  return aml.concat([
    aml.name('\\_S5', aml.pkg([S5_SLP_TYP, S5_SLP_TYP, 0, 0])),
    aml.scope('\\_SB', [
      aml.device('GSIS', [
        aml.name('_HID', aml.eisaId('PNP0C02')),
        aml.name('_UID', 0),
        aml.name('_CRS', aml.resourceTemplate([aml.interrupt(gsis)])),
      ]),
    ]),
  ]);
}

/** Platform options of the x86 ACPI contribution. */
export interface X86AcpiOptions {
  /** A fixed-feature power button (PM1 PWRBTN_STS/EN, the SCI): the FADT's PWR_BUTTON flag is cleared. */
  readonly powerButton?: boolean;
}

/**
 * The x86 platform's contribution for `vcpus` vCPUs; building the tables refuses a count the
 * MADT cannot number (1..MPTABLE_MAX_VCPUS: xAPIC ids).
 */
export function x86AcpiContribution(vcpus: number, opts: X86AcpiOptions = {}): AcpiContribution {
  return {
    source: 'x86',
    dsdt: x86Dsdt,
    madt: () => {
      if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MPTABLE_MAX_VCPUS) {
        throw new X86BootError(
          'TooManyVcpus',
          `the MADT describes 1..${MPTABLE_MAX_VCPUS} vCPUs (xAPIC ids), not ${vcpus}`,
          { vcpus, max: MPTABLE_MAX_VCPUS },
        );
      }
      return {
        header: { localInterruptController: Number(X86Layout.LAPIC), flags: PCAT_COMPAT },
        entries: x86MadtEntries(vcpus),
      };
    },
    fadt: () => ({
      sciInterrupt: SCI_IRQ,
      smiCommand: 0, // none: the platform is in ACPI mode
      pm1aEvent: { port: PM1_EVT_PORT, length: PM1_EVT_LEN },
      pm1aControl: { port: PM1_CNT_PORT, length: PM1_CNT_LEN },
      century: CMOS_CENTURY,
      iapcBootArch: IAPC_BOOT_ARCH.LEGACY_DEVICES | IAPC_BOOT_ARCH.I8042 | IAPC_BOOT_ARCH.VGA_NOT_PRESENT,
      flags: opts.powerButton ? X86_FADT_FLAGS & ~FADT_FLAG.PWR_BUTTON : X86_FADT_FLAGS,
    }),
  };
}

/** Writes built tables, which must lie in [ACPI_START, ACPI_END) (below 1 MiB, e820-reserved). */
export function writeAcpiTables(mem: GuestMemory, t: BuiltAcpiTables): void {
  const at = t.rsdp;
  if (
    at < ACPI_START ||
    at + BigInt(t.image.length) > ACPI_END ||
    !mem.isValidRange(GuestAddress.of(at), t.image.length)
  ) {
    throw new X86BootError(
      'MemoryLayout',
      `the ACPI tables (${t.image.length} bytes at ${hex(at)}) do not fit [${hex(ACPI_START)}, ${hex(ACPI_END)})`,
      { size: t.image.length },
    );
  }
  mem.write(GuestAddress.of(at), t.image);
}
