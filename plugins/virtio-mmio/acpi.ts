import * as aml from '../acpi/aml/index.js';
import { VirtioMmioError } from './errors.js';

/** One virtio-mmio window as the DSDT describes it. */
export interface MmioAcpiWindow {
  readonly base: bigint;
  readonly size: bigint;
  readonly gsi: number;
}

/** At most this many nodes (two hex digits in the node names VR00..VRFF). */
export const MAX_ACPI_MMIO_DEVICES = 256;

/**
 * Scope(\_SB) { Device(VRnn) { _HID "LNRO0005", _UID nn, _CRS { Memory32Fixed(base, size), Interrupt { gsi } } } ... }
 * in window order; empty for no window. Linux's virtio_mmio driver matches LNRO0005: Debian's kernels
 * lack CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, so these nodes are how they find the devices.
 */
export function virtioMmioDsdt(windows: readonly MmioAcpiWindow[]): Uint8Array {
  if (windows.length === 0) return new Uint8Array(0);
  if (windows.length > MAX_ACPI_MMIO_DEVICES)
    throw new VirtioMmioError(
      'Attach',
      `${windows.length} virtio-mmio devices; the DSDT describes at most ${MAX_ACPI_MMIO_DEVICES}`,
      { count: windows.length },
    );
  return aml.scope(
    '\\_SB',
    windows.map((w, i) =>
      aml.device(`VR${i.toString(16).toUpperCase().padStart(2, '0')}`, [
        aml.name('_HID', 'LNRO0005'),
        aml.name('_UID', i),
        aml.name('_CRS', aml.resourceTemplate([aml.memory32Fixed(w.base, w.size), aml.interrupt([w.gsi])])),
      ]),
    ),
  );
}
