/**
 * The device tree the arm64 machine hands its kernel (what QEMU's `-M virt` and Firecracker write, from
 * the machine's own facts): memory, CPUs started through PSCI (`hvc`), the GICv3 with its ITS, the
 * architected timer, an ns16550a UART on MMIO (`stdout-path`, so `earlycon` with no argument finds it),
 * virtio-mmio devices, `chosen` with the command line and the initramfs.
 */
import { Arm64Error } from '../errors.js';
import { encodeFdt, type FdtNode } from './encode.js';
import { cells, EMPTY, node, str, strings, u64Cells } from './values.js';

/** GIC interrupt specifier fields (dt-bindings/interrupt-controller/arm-gic.h, irq.h). */
export const GIC_SPI = 0,
  GIC_PPI = 1;
/** IRQ_TYPE_* of a GIC interrupt specifier's third cell. */
export const IRQ_TYPE = { EDGE_RISING: 1, LEVEL_HIGH: 4 } as const;

/** A guest-physical window. */
export interface DtWindow {
  readonly base: bigint;
  readonly size: bigint;
}

/** An MMIO device with one SPI (a UART, a virtio-mmio transport). */
export interface DtMmioDevice extends DtWindow {
  /** The SPI number (= KVM irqfd GSI; INTID spi + 32). */
  readonly spi: number;
}

/** Everything the machine's device tree says. */
export interface MachineTreeSpec {
  readonly memory: readonly DtWindow[];
  /** Each vCPU's MPIDR affinity bits (its `reg`), in vCPU order. */
  readonly cpus: readonly bigint[];
  readonly gic: { readonly dist: DtWindow; readonly redist: DtWindow; readonly its?: DtWindow };
  /** The architected timer's four PPIs (secure, non-secure, virtual, hypervisor). */
  readonly timerPpis: readonly number[];
  readonly uart?: DtMmioDevice & { readonly clockHz: number };
  readonly virtioMmio: readonly DtMmioDevice[];
  readonly bootargs: string;
  readonly initrd?: { readonly start: bigint; readonly end: bigint };
}

/** phandles of the nodes others point at. */
const PHANDLE = { gic: 1, its: 2 } as const;

const hex = (v: bigint) => v.toString(16);

/** The tree (not yet encoded) for `spec`. */
export function machineTree(spec: MachineTreeSpec): FdtNode {
  if (spec.cpus.length === 0) throw new Arm64Error('BadDeviceTree', 'device tree: no CPUs');
  if (spec.memory.length === 0) throw new Arm64Error('BadDeviceTree', 'device tree: no memory');
  if (spec.timerPpis.length !== 4) throw new Arm64Error('BadDeviceTree', 'device tree: the timer needs 4 PPIs');
  const spiCells = (spi: number, type: number) => cells(GIC_SPI, spi, type);
  const children: FdtNode[] = [];
  children.push(
    node('psci', { compatible: strings(['arm,psci-1.0', 'arm,psci-0.2', 'arm,psci']), method: str('hvc') }),
  );
  for (const m of spec.memory)
    children.push(node(`memory@${hex(m.base)}`, { device_type: str('memory'), reg: u64Cells(m.base, m.size) }));
  children.push(
    node(
      'cpus',
      { '#address-cells': cells(2), '#size-cells': cells(0) },
      spec.cpus.map((mpidr) =>
        node(`cpu@${hex(mpidr)}`, {
          device_type: str('cpu'),
          compatible: str('arm,arm-v8'),
          reg: u64Cells(mpidr),
          'enable-method': str('psci'),
        }),
      ),
    ),
  );
  const { dist, redist, its } = spec.gic;
  children.push(
    node(
      `intc@${hex(dist.base)}`,
      {
        compatible: str('arm,gic-v3'),
        '#interrupt-cells': cells(3),
        'interrupt-controller': EMPTY,
        '#redistributor-regions': cells(1),
        reg: u64Cells(dist.base, dist.size, redist.base, redist.size),
        '#address-cells': cells(2),
        '#size-cells': cells(2),
        ranges: EMPTY,
        phandle: cells(PHANDLE.gic),
      },
      its
        ? [
            node(`its@${hex(its.base)}`, {
              compatible: str('arm,gic-v3-its'),
              'msi-controller': EMPTY,
              '#msi-cells': cells(1),
              reg: u64Cells(its.base, its.size),
              phandle: cells(PHANDLE.its),
            }),
          ]
        : [],
    ),
  );
  const ppi = (n: number) => [GIC_PPI, n, IRQ_TYPE.LEVEL_HIGH];
  children.push(
    node('timer', {
      compatible: str('arm,armv8-timer'),
      interrupts: cells(...spec.timerPpis.flatMap(ppi)),
      'always-on': EMPTY,
    }),
  );
  let stdout: string | undefined;
  if (spec.uart) {
    const u = spec.uart;
    stdout = `/uart@${hex(u.base)}`;
    children.push(
      node(`uart@${hex(u.base)}`, {
        compatible: str('ns16550a'),
        reg: u64Cells(u.base, u.size),
        'reg-shift': cells(0),
        'reg-io-width': cells(1),
        'clock-frequency': cells(u.clockHz),
        interrupts: spiCells(u.spi, IRQ_TYPE.LEVEL_HIGH),
      }),
    );
  }
  for (const d of spec.virtioMmio)
    children.push(
      node(`virtio_mmio@${hex(d.base)}`, {
        compatible: str('virtio,mmio'),
        reg: u64Cells(d.base, d.size),
        interrupts: spiCells(d.spi, IRQ_TYPE.EDGE_RISING),
        'dma-coherent': EMPTY,
      }),
    );
  const chosen: Record<string, Uint8Array> = { bootargs: str(spec.bootargs) };
  if (stdout) chosen['stdout-path'] = str(stdout);
  if (spec.initrd) {
    if (spec.initrd.end < spec.initrd.start) throw new Arm64Error('BadDeviceTree', 'device tree: initrd ends first');
    chosen['linux,initrd-start'] = u64Cells(spec.initrd.start);
    chosen['linux,initrd-end'] = u64Cells(spec.initrd.end);
  }
  children.push(node('chosen', chosen));
  return node(
    '',
    {
      compatible: str('linux,dummy-virt'),
      model: str('tsvmm arm64'),
      '#address-cells': cells(2),
      '#size-cells': cells(2),
      'interrupt-parent': cells(PHANDLE.gic),
    },
    children,
  );
}

/** The encoded blob for `spec` (boot CPU = the first CPU's MPIDR). */
export function machineFdt(spec: MachineTreeSpec): Uint8Array {
  return encodeFdt(machineTree(spec), { bootCpuId: Number(spec.cpus[0] & 0xffff_ffffn) });
}
