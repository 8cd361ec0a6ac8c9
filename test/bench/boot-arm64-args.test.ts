import { expect } from 'chai';
import { ARM64_BOOT, arm64BootFigures, qemuArm64Argv } from './boot-arm64-args.js';

describe('arm64 boot benchmark', () => {
  it("runs QEMU's virt machine on KVM with the same guest, memory, vCPUs and command line as ours", () => {
    const a = qemuArm64Argv('/k/Image', '/k/i.cpio.gz').join(' ');
    expect(a).to.match(/^\/opt\/qemu\/usr\/bin\/qemu-system-aarch64 /);
    expect(a).to.contain('-M virt,gic-version=3 -accel kvm -cpu host');
    expect(a).to.contain(`-smp ${ARM64_BOOT.vcpus} -m ${ARM64_BOOT.memoryMiB}`);
    expect(a).to.contain(`-kernel /k/Image -initrd /k/i.cpio.gz -append console=ttyAMA0 ${ARM64_BOOT.cmdline}`);
  });

  it("reads the last figures line from L1's console and nothing from a console without one", () => {
    const f = { ours: [1, 2], qemu: [3, 4], problems: ['qemu 3: x'] };
    const console = `noise\r\nBENCH-ARM64 {"ours":[9],"qemu":[9],"problems":[]}\r\nBENCH-ARM64 ${JSON.stringify(f)}\r\nTSVMM-EXIT 0\r\n`;
    expect(arm64BootFigures(console)).to.deep.equal(f);
    expect(arm64BootFigures('TSVMM-EXIT 1\n')).to.equal(undefined);
  });
});
