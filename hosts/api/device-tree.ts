import type { InjectionToken } from 'tsyringe';
import type { Bus, BusRegistration } from '../../core/bus/bus.js';
import type { Device } from '../../core/device/device.js';
import { formatPciAddress } from '../../core/pci/address.js';
import type { PciAttachment, PciBus } from '../../core/pci/bus.js';
import type { PciBarSpec } from '../../core/pci/device.js';
import type { Allocation } from '../../core/platform/resources.js';
import { Tokens } from '../../core/tokens.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';

/**
 * One resource of a device, as Cloud Hypervisor's vm-device `Resource` enum serialises (serde's external tagging):
 * `{"PioAddressRange":{"base":..,"size":..}}`, `{"MmioAddressRange":..}`, `{"PciBar":{"index","base","size",
 * "type_","prefetchable"}}`, `{"LegacyIrq":n}`.
 */
export type DeviceResource =
  | { PioAddressRange: { base: number; size: number } }
  | { MmioAddressRange: { base: number; size: number } }
  | { PciBar: { index: number; base: number; size: number; type_: PciBarRegionType; prefetchable: boolean } }
  | { LegacyIrq: number };

/** Cloud Hypervisor's PciBarRegionType names. */
export type PciBarRegionType = 'IoRegion' | 'Memory32BitRegion' | 'Memory64BitRegion';

/** vm.info's device_tree entry (the spec's DeviceNode, plus CH's `parent`). */
export interface DeviceNode {
  id: string;
  resources: DeviceResource[];
  parent?: string;
  children: string[];
  pci_bdf?: string;
}

/** What a device tree is built from: the VM's devices, bus windows, interrupt lines and PCI functions. */
export interface DeviceTreeSources {
  devices: readonly Device[];
  registrations: readonly BusRegistration[];
  irqs: readonly Allocation[];
  pci: readonly PciAttachment[];
}

const BAR_TYPES: Record<PciBarSpec['kind'], PciBarRegionType> = {
  io: 'IoRegion',
  mmio32: 'Memory32BitRegion',
  mmio64: 'Memory64BitRegion',
};

/** Where the guest placed BAR `spec` (its BAR registers in configuration space; 0 until it programmed them). */
function barBase(a: PciAttachment, spec: PciBarSpec): number {
  const reg = (i: number): number => a.device.readConfig(0x10 + 4 * i, 4) >>> 0;
  const lo = reg(spec.index);
  if (spec.kind === 'io') return (lo & ~0x3) >>> 0;
  const base = BigInt((lo & ~0xf) >>> 0);
  return Number(spec.kind === 'mmio64' ? base | (BigInt(reg(spec.index + 1)) << 32n) : base);
}

/** A bus window or an interrupt line belongs to a device when named after it (`i8042` owns `i8042-data`). */
const owns = (id: string, name: string): boolean => name === id || name.startsWith(`${id}-`);

/** The PCI function of device `id`: its own id, or the transport's function of a virtio device (`virtio-pci:id`). */
export function pciAttachmentOf(pci: readonly PciAttachment[], id: string): PciAttachment | undefined {
  return pci.find((a) => a.device.id === id) ?? pci.find((a) => a.device.id.endsWith(`:${id}`));
}

/**
 * Cloud Hypervisor's device tree from the VM's parts: one node per registered device, with the port and MMIO
 * windows and interrupt lines named after it, and for a PCI function its address (`pci_bdf`, `0000:00:01.0`) and
 * BARs (where the guest placed them). Pure over its sources; deviceTree() gathers them from a running VM.
 */
export function buildDeviceTree(s: DeviceTreeSources): Record<string, DeviceNode> {
  const tree: Record<string, DeviceNode> = {};
  for (const d of s.devices) {
    const resources: DeviceResource[] = [];
    for (const r of s.registrations) {
      if (!owns(d.id, r.name)) continue;
      const range = { base: Number(r.range.start.value), size: Number(r.range.length) };
      resources.push(r.space === 'pio' ? { PioAddressRange: range } : { MmioAddressRange: range });
    }
    for (const irq of s.irqs) if (owns(d.id, irq.owner)) resources.push({ LegacyIrq: Number(irq.start) });
    const node: DeviceNode = { id: d.id, resources, children: [] };
    const fn = s.pci.find((a) => a.device.id === d.id);
    if (fn) {
      node.pci_bdf = formatPciAddress(fn.address);
      for (const bar of fn.device.bars)
        resources.push({
          PciBar: {
            index: bar.index,
            base: barBase(fn, bar),
            size: Number(bar.size),
            type_: BAR_TYPES[bar.kind],
            prefetchable: bar.prefetchable ?? false,
          },
        });
    }
    tree[d.id] = node;
  }
  return tree;
}

/** The running VM's device tree (vm.info's `device_tree`). */
export function deviceTree(vm: AssembledVm): Record<string, DeviceNode> {
  const c = vm.container;
  const has = (t: InjectionToken<unknown>): boolean => c.isRegistered(t, true);
  const bus = has(Tokens.Bus.token) ? c.resolve<Bus>(Tokens.Bus.token) : undefined;
  return buildDeviceTree({
    devices: has(Tokens.DeviceRegistry.token) ? c.resolve(Tokens.DeviceRegistry.token).all() : [],
    registrations: bus?.registrations() ?? [],
    irqs: has(Tokens.Resources.token) ? c.resolve(Tokens.Resources.token).allocations('irq') : [],
    pci: has(Tokens.PciBus.token) ? c.resolve<PciBus>(Tokens.PciBus.token).attachments() : [],
  });
}
