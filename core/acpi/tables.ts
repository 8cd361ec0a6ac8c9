import type { Disposable } from '../bus/bus.js';

/**
 * FADT fields a platform owns (ACPI 6.4, 5.2.9). Every field is optional; the acpi plugin
 * fills the rest (DSDT pointers, "no C2/C3" latencies, the hypervisor vendor identity) and,
 * when no contribution names a PM1a control block, sets HW_REDUCED_ACPI in `flags`.
 */
export interface AcpiFadtFields {
  /** SCI_INT: the interrupt the SCI is wired to (a GSI where the arch routes through an I/O APIC). */
  readonly sciInterrupt?: number;
  /** SMI_CMD: the port that switches to ACPI mode; 0 = the platform is already in ACPI mode. */
  readonly smiCommand?: number;
  /** PM1a_EVT_BLK: status + enable registers, as a port and a byte length (PM1_EVT_LEN). */
  readonly pm1aEvent?: { readonly port: number; readonly length: number };
  /** PM1a_CNT_BLK: the control register, as a port and a byte length (PM1_CNT_LEN). */
  readonly pm1aControl?: { readonly port: number; readonly length: number };
  /** CENTURY: CMOS RAM index of the RTC's century byte (0 = none). */
  readonly century?: number;
  /** IAPC_BOOT_ARCH flags (legacy devices, i8042, VGA, MSI, CMOS RTC). */
  readonly iapcBootArch?: number;
  /** ARM_BOOT_ARCH flags (PSCI compliant, PSCI use HVC). */
  readonly armBootArch?: number;
  /** Fixed feature flags (WBINVD, PWR_BUTTON, SLP_BUTTON, HW_REDUCED_ACPI, ...). */
  readonly flags?: number;
}

/** The MADT's header fields after the standard header (ACPI 6.4, 5.2.12). */
export interface AcpiMadtHeader {
  /** Physical address of the local interrupt controller (the local APIC where the arch has one; 0 otherwise). */
  readonly localInterruptController?: number;
  /** MADT flags (bit 0 PCAT_COMPAT: the platform has dual 8259s). */
  readonly flags?: number;
}

/** A whole table besides RSDP/XSDT/FADT/DSDT/MADT (MCFG, SRAT...): the acpi plugin adds the header. */
export interface AcpiTableBody {
  /** Four ASCII characters, e.g. 'MCFG'. */
  readonly signature: string;
  readonly revision: number;
  /** The bytes after the 36-byte standard header. */
  readonly body: Uint8Array;
}

/**
 * What one platform part or device puts into the ACPI tables. Each member is called when the
 * tables are built (the machine builds them when it loads the kernel, after every plugin
 * registered), so a contribution may describe resources allocated after it was added.
 */
export interface AcpiContribution {
  /** Who contributes (a plugin instance or device id): named in error messages. */
  readonly source: string;
  /**
   * AML term objects for the DSDT's body (Scope, Device, Name, Method...), encoded with the
   * acpi plugin's AML builder (plugins/acpi/aml). Contributions are concatenated in the order
   * they were added; a contribution that opens a scope another one defines must come after it.
   */
  dsdt?(): Uint8Array;
  /** MADT header fields and interrupt controller structures (each a whole entry: type, length, body). */
  madt?(): { readonly header?: AcpiMadtHeader; readonly entries?: readonly Uint8Array[] };
  /** FADT fields; two contributions that set one field to different values are refused. */
  fadt?(): AcpiFadtFields;
  /** Extra tables listed in the XSDT after the FADT and MADT, in order. */
  tables?(): readonly AcpiTableBody[];
}

/** The tables as built: one image, the RSDP at its start. */
export interface BuiltAcpiTables {
  /** Guest physical address of the RSDP (the image's first byte). */
  readonly rsdp: bigint;
  /** RSDP, XSDT, FADT, DSDT, MADT and the extra tables, laid out from `rsdp`. */
  readonly image: Uint8Array;
}

/**
 * The ACPI tables of one VM (token `AcpiTables`, provided by the acpi plugin). The platform
 * (CPUs, interrupt controllers, PM registers, sleep states) and devices (DSDT nodes) contribute;
 * the arch machine calls build() once, where its memory map reserves room, and writes the image.
 */
export interface AcpiTables {
  /** Adds a contribution; disposing it takes it out of tables built later. */
  contribute(contribution: AcpiContribution): Disposable;
  /** Lays the tables out from `base` (16-byte aligned); throws a one-line error for a refused contribution. */
  build(base: bigint): BuiltAcpiTables;
}
