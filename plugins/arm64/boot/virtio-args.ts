/**
 * virtio-mmio announces each device on the kernel command line (`virtio_mmio.device=4K@0xADDR:GSI`), which x86
 * kernels read. On arm64 the device tree says it instead (Debian's arm64 kernel is built without
 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, and a GSI is no Linux IRQ number there): the machine takes these words
 * out of the command line and turns them into `virtio,mmio` nodes, so the virtio-mmio plugin stays unchanged.
 */
import { Arm64Error } from '../errors.js';

/** One virtio-mmio device the command line announced. */
export interface VirtioMmioArg {
  readonly base: bigint;
  readonly size: bigint;
  /** The GSI (= SPI on arm64). */
  readonly gsi: number;
}

const WORD = /^virtio_mmio\.device=(\d+)([KMG]?)@(0x[0-9a-fA-F]+|\d+):(\d+)$/;
const UNIT: Record<string, bigint> = { '': 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n };

/** Splits a command line into the rest (order kept) and its virtio_mmio.device= words. */
export function splitVirtioMmioArgs(cmdline: string): { bootargs: string; devices: VirtioMmioArg[] } {
  const rest: string[] = [];
  const devices: VirtioMmioArg[] = [];
  for (const word of cmdline.split(/\s+/).filter(Boolean)) {
    if (!word.startsWith('virtio_mmio.device=')) {
      rest.push(word);
      continue;
    }
    const m = WORD.exec(word);
    if (!m) throw new Arm64Error('InvalidConfig', `cannot read the command line word '${word}'`, { word });
    devices.push({ size: BigInt(m[1]!) * UNIT[m[2]!]!, base: BigInt(m[3]!), gsi: Number(m[4]) });
  }
  return { bootargs: rest.join(' '), devices };
}
