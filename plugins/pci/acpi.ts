import type { AcpiContribution, AcpiTableBody } from '../../core/acpi/tables.js';
import type { ResourceSpace, Span } from '../../core/platform/layout.js';
import type { Resources } from '../../core/platform/resources.js';
import * as aml from '../acpi/aml/index.js';
import { CONFIG_ADDRESS_PORT, CONFIG_PORTS, ECAM_BUS_SIZE } from './config-access.js';
import { PCI_PINS } from './intx.js';

/** Owners of BAR allocations start with this: their places stay inside the host bridge's windows. */
export const BAR_OWNER_PREFIX = 'pci:';

/** The host bridge windows the DSDT announces, per space: the allocation window minus what others hold. */
export interface PciWindows {
  readonly io: readonly Span[];
  readonly mmio32: readonly Span[];
  readonly mmio64: readonly Span[];
}

/**
 * The spans of `space`'s allocation window not held by anything but PCI BARs: the places a BAR may be
 * given or moved to. The platform's fixed devices (IOAPIC, LAPIC, the boot timer lie outside the
 * allocation windows), the ECAM window and other devices' windows (virtio-mmio) are left out, so the
 * guest never sees a device inside the bridge's window that the bridge does not decode.
 */
export function freeSpans(resources: Resources, space: ResourceSpace): Span[] {
  const { alloc } = resources.window(space);
  const taken = resources
    .allocations(space)
    .filter((a) => !a.owner.startsWith(BAR_OWNER_PREFIX))
    .map((a) => ({ start: a.start, end: a.start + a.size }))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Span[] = [];
  let at = alloc.start;
  for (const t of taken) {
    if (t.end <= at || t.start >= alloc.end) continue;
    if (t.start > at) out.push({ start: at, end: t.start });
    if (t.end > at) at = t.end;
  }
  if (at < alloc.end) out.push({ start: at, end: alloc.end });
  return out;
}

/** The windows of every space the bridge decodes. */
export function pciWindows(resources: Resources): PciWindows {
  return {
    io: freeSpans(resources, 'pio'),
    mmio32: freeSpans(resources, 'mmio32'),
    mmio64: freeSpans(resources, 'mmio64'),
  };
}

/** What the host bridge's DSDT node describes. */
export interface PciDsdtOptions {
  readonly windows: PciWindows;
  /** GSIs of the bus's INTx lines in swizzle order (slot s, pin p -> gsis[(s + p) % n]). */
  readonly intxGsis: readonly number[];
  /** The ECAM window, reserved as a motherboard resource (PNP0C02) so Linux accepts the MCFG entry. */
  readonly ecam?: { readonly base: bigint; readonly size: bigint };
  /** Whether ports 0xCF8..0xCFF are served (claimed by the bridge as a consumer). */
  readonly ports: boolean;
}

/**
 * Scope(\_SB) { Device(PCI0) { _HID PNP0A08, _CID PNP0A03, _ADR 0, _SEG 0, _BBN 0, _UID 0, _CRS { bus 0,
 * IO(0xCF8, 8), the I/O, 32-bit and 64-bit memory windows }, _PRT { for each slot and pin: its GSI } },
 * Device(PCIM) { _HID PNP0C02, _UID "ECAM", _CRS { Memory32Fixed(ECAM) } } }.
 * _PRT entries use the GSI form (source 0, source index = GSI): level, active low, shared, as PCI INTx is.
 */
export function pciDsdt(o: PciDsdtOptions): Uint8Array {
  const crs: Uint8Array[] = [aml.wordBusNumber({ min: 0, max: 0 })];
  if (o.ports) crs.push(aml.io(CONFIG_ADDRESS_PORT, CONFIG_ADDRESS_PORT, 1, CONFIG_PORTS));
  for (const w of o.windows.io) crs.push(aml.wordIo({ min: w.start, max: w.end - 1n }));
  for (const w of o.windows.mmio32) crs.push(aml.dwordMemory({ min: w.start, max: w.end - 1n, cache: 'NonCacheable' }));
  for (const w of o.windows.mmio64) crs.push(aml.qwordMemory({ min: w.start, max: w.end - 1n, cache: 'NonCacheable' }));
  const prt: Uint8Array[] = [];
  for (let slot = 0; slot < 32; slot++)
    for (let pin = 0; pin < PCI_PINS; pin++)
      prt.push(aml.pkg([(slot << 16) | 0xffff, pin, 0, o.intxGsis[(slot + pin) % o.intxGsis.length]]));
  const devices = [
    aml.device('PCI0', [
      aml.name('_HID', aml.eisaId('PNP0A08')),
      aml.name('_CID', aml.eisaId('PNP0A03')),
      aml.name('_ADR', 0),
      aml.name('_SEG', 0),
      aml.name('_BBN', 0),
      aml.name('_UID', 0),
      aml.name('_CRS', aml.resourceTemplate(crs)),
      aml.name('_PRT', aml.pkg(prt)),
    ]),
  ];
  if (o.ecam)
    devices.push(
      aml.device('PCIM', [
        aml.name('_HID', aml.eisaId('PNP0C02')),
        aml.name('_UID', 'ECAM'),
        aml.name('_CRS', aml.resourceTemplate([aml.memory32Fixed(o.ecam.base, o.ecam.size)])),
      ]),
    );
  return aml.scope('\\_SB', devices);
}

/** The MCFG table (PCI Firmware 3.2, 4.1.2): one allocation, segment 0, buses 0..(size / 1 MiB - 1). */
export function mcfgTable(ecam: { readonly base: bigint; readonly size: bigint }): AcpiTableBody {
  const body = new Uint8Array(8 + 16);
  const dv = new DataView(body.buffer);
  dv.setBigUint64(8, ecam.base, true);
  dv.setUint16(16, 0, true); // segment group
  body[18] = 0; // start bus
  body[19] = Number(ecam.size / ECAM_BUS_SIZE) - 1; // end bus
  return { signature: 'MCFG', revision: 1, body };
}

/** The pci plugin's contribution: the PCI0 and ECAM nodes, and MCFG when ECAM is served. */
export function pciAcpiContribution(opts: () => PciDsdtOptions): AcpiContribution {
  return {
    source: 'pci',
    dsdt: () => pciDsdt(opts()),
    tables: () => {
      const e = opts().ecam;
      return e ? [mcfgTable(e)] : [];
    },
  };
}
