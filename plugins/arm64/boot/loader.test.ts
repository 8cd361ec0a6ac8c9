import { expect } from 'chai';
import { GuestAddress } from '../../../core/address.js';
import { createAnonymousMmapMemory } from '../../../core/memory/backends/anonymous-mmap.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { decodeFdt, findNode, propCells, propStrings } from '../fdt/decode.js';
import { Arm64Layout } from '../layout.js';
import { fakeArm64Image } from '../testing.js';
import { loadArm64Linux } from './loader.js';

const MIB = 1n << 20n;

describe('arm64 Linux loader', () => {
  let mem: GuestMemory;
  beforeEach(() => {
    mem = createAnonymousMmapMemory({
      regions: [{ start: Arm64Layout.RAM_START, size: 64n * MIB }],
      backend: 'anonymous',
    });
  });
  afterEach(() => mem.close());

  it('writes kernel, initramfs and a device tree naming them, the CPUs, the UART and virtio-mmio', () => {
    const kernel = fakeArm64Image({ length: 0x20000, imageSize: 4n * MIB });
    const initramfs = new Uint8Array(100_000).fill(0x5a);
    const l = loadArm64Linux(mem, {
      kernel,
      initramfs,
      cmdline: 'console=ttyS0 virtio_mmio.device=4K@0xa000000:2 quiet',
      mpidrs: [0n, 1n],
      uart: { base: Arm64Layout.UART, size: Arm64Layout.UART_SIZE, spi: Arm64Layout.SPI_UART },
      its: true,
    });
    expect(l.kernel).to.equal(Arm64Layout.RAM_START);
    expect(Buffer.from(mem.read(GuestAddress.of(l.kernel), kernel.length)).equals(Buffer.from(kernel))).to.equal(true);
    expect(mem.read(GuestAddress.of(l.initrd!.start), 4)).to.deep.equal(Uint8Array.of(0x5a, 0x5a, 0x5a, 0x5a));
    const { root } = decodeFdt(mem.read(GuestAddress.of(l.fdt), l.fdtBytes.length));
    const chosen = findNode(root, '/chosen');
    expect(propStrings(chosen, 'bootargs')).to.deep.equal(['console=ttyS0 quiet']);
    expect(propCells(chosen, 'linux,initrd-start')).to.deep.equal([0, Number(l.initrd!.start)]);
    expect(propCells(findNode(root, '/virtio_mmio@a000000'), 'interrupts')).to.deep.equal([0, 2, 1]);
    expect(findNode(root, '/cpus')!.children.map((c) => c.name)).to.deep.equal(['cpu@0', 'cpu@1']);
    expect(propCells(findNode(root, '/intc@8000000'), 'reg')!.slice(4)).to.deep.equal([0, 0x080a_0000, 0, 0x4_0000]);
    expect(findNode(root, '/uart@9000000')).to.not.equal(undefined);
  });

  it('writes nothing when the boot cannot be done', () => {
    const big = fakeArm64Image({ length: 0x20000, imageSize: 63n * MIB });
    expect(() => loadArm64Linux(mem, { kernel: big, cmdline: '', mpidrs: [0n], its: false })).to.throw(/do not fit/);
    expect(() =>
      loadArm64Linux(mem, { kernel: fakeArm64Image(), cmdline: 'virtio_mmio.device=x', mpidrs: [0n], its: false }),
    ).to.throw(/cannot read/);
    expect(() => loadArm64Linux(mem, { kernel: new Uint8Array(10), cmdline: '', mpidrs: [0n], its: false })).to.throw(
      /not a bootable arm64 Image/,
    );
    expect(mem.read(GuestAddress.of(Arm64Layout.RAM_START), 64).every((b) => b === 0)).to.equal(true);
  });
});
