import { expect } from 'chai';
import { checkPlatformLayout } from '../../core/platform/layout.js';
import {
  ARM64_MAX_VCPUS,
  ARM64_SPIS,
  Arm64Layout,
  arm64PlatformLayout,
  arm64RamRegions,
  arm64Redistributors,
} from './layout.js';

describe('arm64 layout', () => {
  it('keeps the fixed windows apart and below the device window, RAM above it', () => {
    const L = Arm64Layout;
    const windows: Array<[bigint, bigint]> = [
      [L.GIC_DIST, L.GIC_DIST_SIZE],
      [L.GIC_ITS, L.GIC_ITS_SIZE],
      [L.GIC_REDIST, L.GIC_REDIST_END - L.GIC_REDIST],
      [L.UART, L.UART_SIZE],
      [L.BOOT_TIMER, L.BOOT_TIMER_SIZE],
    ];
    for (let i = 1; i < windows.length; i++)
      expect(windows[i - 1][0] + windows[i - 1][1] <= windows[i][0], `window ${i}`).to.equal(true);
    expect(L.BOOT_TIMER + L.BOOT_TIMER_SIZE <= L.MMIO_ALLOC_START).to.equal(true);
    expect(L.MMIO_END <= L.RAM_START).to.equal(true);
    expect(L.RAM_START + L.RAM_MAX <= L.MMIO64_START).to.equal(true);
    expect(ARM64_MAX_VCPUS).to.equal(123);
  });

  it('gives one RAM region from 1 GiB and refuses sizes that do not fit', () => {
    expect(arm64RamRegions(256n << 20n)).to.deep.equal([{ start: 1n << 30n, size: 256n << 20n }]);
    expect(() => arm64RamRegions(3n << 20n)).to.throw(/multiple of 2 MiB/);
    expect(() => arm64RamRegions(0n)).to.throw(/multiple of 2 MiB/);
    expect(() => arm64RamRegions(256n << 30n)).to.throw(/exceeds/);
  });

  it('sizes the redistributors per vCPU', () => {
    expect(arm64Redistributors(2)).to.deep.equal({ start: 0x080a_0000n, size: 0x4_0000n });
    expect(() => arm64Redistributors(0)).to.throw(/vcpus/);
    expect(() => arm64Redistributors(124)).to.throw(/vcpus/);
  });

  it('is a valid PlatformLayout: SPIs for devices, the UART line as com1, default vGIC routes', () => {
    const l = checkPlatformLayout(arm64PlatformLayout());
    expect(l.arch).to.equal('aarch64');
    expect(l.legacyIrqs.com1).to.equal(Arm64Layout.SPI_UART);
    expect(l.irqchipRoutes).to.have.length(ARM64_SPIS);
    expect(l.irqchipRoutes[5]).to.deep.equal({ gsi: 5, kind: 'irqchip', chip: 0, pin: 5 });
    expect(l.spaces.pio.alloc.end - l.spaces.pio.alloc.start).to.equal(0n);
    expect(l.fixed['boot-timer'].start).to.equal(Arm64Layout.BOOT_TIMER);
  });
});
