import { expect } from 'chai';
import { dtcDecompile, needDtc } from '../testing.js';
import { decodeFdt, findNode, propCells, propStrings } from './decode.js';
import { machineFdt, type MachineTreeSpec } from './machine-tree.js';

const spec = (over: Partial<MachineTreeSpec> = {}): MachineTreeSpec => ({
  memory: [{ base: 0x4000_0000n, size: 0x1000_0000n }],
  cpus: [0n, 1n],
  gic: {
    dist: { base: 0x0800_0000n, size: 0x1_0000n },
    redist: { base: 0x080a_0000n, size: 0x4_0000n },
    its: { base: 0x0808_0000n, size: 0x2_0000n },
  },
  timerPpis: [13, 14, 11, 10],
  uart: { base: 0x0900_0000n, size: 0x1000n, spi: 1, clockHz: 1_843_200 },
  virtioMmio: [
    { base: 0x0a00_0000n, size: 0x1000n, spi: 2 },
    { base: 0x0a00_1000n, size: 0x1000n, spi: 3 },
  ],
  bootargs: 'console=ttyS0 earlycon',
  initrd: { start: 0x4f00_0000n, end: 0x4f12_3456n },
  ...over,
});

describe('arm64 machine device tree', () => {
  it('describes memory, PSCI CPUs, the GICv3 + ITS, the timer, the UART, virtio-mmio and chosen', () => {
    const { root, bootCpuId } = decodeFdt(machineFdt(spec()));
    expect(bootCpuId).to.equal(0);
    expect(propStrings(root, 'compatible')).to.deep.equal(['linux,dummy-virt']);
    expect(propCells(root, 'interrupt-parent')).to.deep.equal(propCells(findNode(root, '/intc@8000000'), 'phandle'));
    expect(propCells(findNode(root, '/memory@40000000'), 'reg')).to.deep.equal([0, 0x4000_0000, 0, 0x1000_0000]);
    expect(propStrings(findNode(root, '/psci'), 'method')).to.deep.equal(['hvc']);
    for (const i of [0, 1]) {
      const cpu = findNode(root, `/cpus/cpu@${i}`);
      expect(propStrings(cpu, 'enable-method')).to.deep.equal(['psci']);
      expect(propCells(cpu, 'reg')).to.deep.equal([0, i]);
    }
    const gic = findNode(root, '/intc@8000000');
    expect(propStrings(gic, 'compatible')).to.deep.equal(['arm,gic-v3']);
    expect(propCells(gic, 'reg')).to.deep.equal([0, 0x0800_0000, 0, 0x1_0000, 0, 0x080a_0000, 0, 0x4_0000]);
    expect(propStrings(findNode(root, '/intc@8000000/its@8080000'), 'compatible')).to.deep.equal(['arm,gic-v3-its']);
    expect(propCells(findNode(root, '/timer'), 'interrupts')).to.deep.equal([1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]);
    const uart = findNode(root, '/uart@9000000');
    expect(propStrings(uart, 'compatible')).to.deep.equal(['ns16550a']);
    expect(propCells(uart, 'interrupts')).to.deep.equal([0, 1, 4]);
    expect(propCells(findNode(root, '/virtio_mmio@a001000'), 'interrupts')).to.deep.equal([0, 3, 1]);
    const chosen = findNode(root, '/chosen');
    expect(propStrings(chosen, 'bootargs')).to.deep.equal(['console=ttyS0 earlycon']);
    expect(propStrings(chosen, 'stdout-path')).to.deep.equal(['/uart@9000000']);
    expect(propCells(chosen, 'linux,initrd-start')).to.deep.equal([0, 0x4f00_0000]);
    expect(propCells(chosen, 'linux,initrd-end')).to.deep.equal([0, 0x4f12_3456]);
  });

  it('passes dtc without a warning', function () {
    needDtc(this);
    const d = dtcDecompile(machineFdt(spec()));
    expect(d.status).to.equal(0);
    expect(d.stderr).to.equal('');
    expect(d.dts).to.include('compatible = "arm,psci-1.0\\0arm,psci-0.2\\0arm,psci";');
  });

  it('leaves out what is not there and refuses an empty machine', () => {
    const { root } = decodeFdt(machineFdt(spec({ uart: undefined, initrd: undefined, virtioMmio: [] })));
    expect(findNode(root, '/chosen')?.props.map(([k]) => k)).to.deep.equal(['bootargs']);
    expect(() => machineFdt(spec({ cpus: [] }))).to.throw(/no CPUs/);
    expect(() => machineFdt(spec({ memory: [] }))).to.throw(/no memory/);
    expect(() => machineFdt(spec({ initrd: { start: 2n, end: 1n } }))).to.throw(/initrd ends first/);
  });
});
