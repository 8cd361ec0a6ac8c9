import * as aml from '../acpi/aml/index.js';
import { HOTPLUG_SLOTS, HOTPLUG_WINDOW_SIZE } from './registers.js';

/** Where the controller lives: its register window, the GED's interrupt, and the host bridge's ACPI path. */
export interface HotplugAmlOptions {
  /** Guest-physical base of the 16-byte register window. */
  readonly base: bigint;
  /** The GSI the GED signals on (edge, active high). */
  readonly gsi: number;
  /** ACPI path of the PCI host bridge device (the pci plugin's, e.g. '\\_SB.PCI0'). */
  readonly bridge: string;
}

const slotName = (n: number): string => `S${n.toString(16).toUpperCase().padStart(2, '0')}`;

/**
 * The DSDT part of ACPI PCI hotplug (the scheme Cloud Hypervisor and QEMU use, which Linux's built-in acpiphp
 * and evged drivers understand):
 *
 *   Scope(\_SB) {
 *     Device(PHPR) {                      // the controller: registers in SystemMemory
 *       _HID PNP0C02, _UID "PCI Hotplug Controller", _STA 0x0B, _CRS { Memory32Fixed(base, 16) }
 *       Mutex(BLCK), OperationRegion(PCST) + Field { PCIU, PCID, B0EJ, PSEG }
 *       Method(PCEJ, 1) { B0EJ = 1 << Arg0 }          // a slot's _EJ0 lands here
 *       Method(PSCN) { bridge.PCNT() }                 // scan: notify the slots that changed
 *     }
 *     Device(PGED) { _HID ACPI0013, _CRS { Interrupt(Edge, ActiveHigh) { gsi } }, Method(_EVT, 1) { PHPR.PSCN() } }
 *   }
 *   Scope(bridge) {
 *     Method(PCNT) { Local0 = PCIU; Local1 = PCID; for each slot n: If (Local0 & bit n) Notify(Snn, 1)
 *                    If (Local1 & bit n) Notify(Snn, 3) }
 *     Device(Snn) { _ADR n << 16, _SUN n, Method(_EJ0, 1) { PHPR.PCEJ(n) } }   // n = 1..31
 *   }
 *
 * The GED's _CRS holds only the interrupt: Linux's GED driver refuses any other resource there.
 */
export function hotplugAml(o: HotplugAmlOptions): Uint8Array {
  const lock = '\\_SB.PHPR.BLCK';
  const controller = aml.device('PHPR', [
    aml.name('_HID', aml.eisaId('PNP0C02')), // motherboard resources: Linux reserves the window, PCI stays off it
    aml.name('_UID', 'PCI Hotplug Controller'),
    aml.name('_STA', 0x0b),
    aml.name('_CRS', aml.resourceTemplate([aml.memory32Fixed(o.base, HOTPLUG_WINDOW_SIZE)])),
    aml.mutex('BLCK'),
    aml.opRegion('PCST', aml.RegionSpace.SystemMemory, o.base, HOTPLUG_WINDOW_SIZE),
    aml.field(
      'PCST',
      [
        { name: 'PCIU', bits: 32 },
        { name: 'PCID', bits: 32 },
        { name: 'B0EJ', bits: 32 },
        { name: 'PSEG', bits: 32 },
      ],
      { access: aml.FieldAccess.DWord, update: aml.FieldUpdate.WriteAsZeros },
    ),
    aml.method('PCEJ', 1, [
      aml.acquire(lock),
      aml.store(0, 'PSEG'),
      aml.store(aml.shiftLeft(1, aml.arg(0)), 'B0EJ'),
      aml.release(lock),
      aml.ret(0),
    ]),
    aml.method('PSCN', 0, [aml.acquire(lock), aml.store(0, 'PSEG'), aml.call(`${o.bridge}.PCNT`), aml.release(lock)]),
  ]);
  const ged = aml.device('PGED', [
    aml.name('_HID', 'ACPI0013'),
    aml.name('_UID', 0),
    aml.name('_CRS', aml.resourceTemplate([aml.interrupt([o.gsi])])),
    aml.method('_EVT', 1, [aml.call('\\_SB.PHPR.PSCN')], { serialized: true }),
  ]);
  const notifySlots = HOTPLUG_SLOTS.flatMap((n) => [
    aml.ifThen(aml.and(aml.local(0), 2 ** n), [aml.notify(slotName(n), 1)]),
    aml.ifThen(aml.and(aml.local(1), 2 ** n), [aml.notify(slotName(n), 3)]),
  ]);
  const pcnt = aml.method('PCNT', 0, [
    aml.store(aml.ref('\\_SB.PHPR.PCIU'), aml.local(0)),
    aml.store(aml.ref('\\_SB.PHPR.PCID'), aml.local(1)),
    ...notifySlots,
  ]);
  const slots = HOTPLUG_SLOTS.map((n) =>
    aml.device(slotName(n), [
      aml.name('_ADR', n << 16),
      aml.name('_SUN', n),
      aml.method('_EJ0', 1, [aml.call('\\_SB.PHPR.PCEJ', [n])]),
    ]),
  );
  return aml.concat([aml.scope('\\_SB', [controller, ged]), aml.scope(o.bridge, [pcnt, ...slots])]);
}
