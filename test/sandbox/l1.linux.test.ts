import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { c, errno, errnoName } from '../../core/native/libc.js';
import { guestKit, writeInitramfsWithScript, type GuestKit } from '../../hosts/guestkit/index.js';
import { parseSetupHeader } from '../../hosts/guestkit/bzimage.js';
import { bootVm, describeBoot } from '../../hosts/sandbox/index.js';

/**
 * Runs where Linux guests can boot on KVM: inside the sandbox's L1, or on a hardware-KVM host.
 * Checks the nested KVM itself, then QEMU-KVM booting the guest kit (bzImage and PVH vmlinux),
 * then the failure reports.
 */
describe('linux host for the linux tier (L1 or hardware KVM)', function () {
  this.timeout(180_000);
  let kit: GuestKit;
  let tmp: string;

  before(async () => {
    kit = await guestKit();
    tmp = mkdtempSync(join(tmpdir(), 'tsvmm-l1-test-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('has /dev/kvm', () => {
    expect(existsSync('/dev/kvm')).to.equal(true);
  });

  it('creates a VM through koffi: KVM_GET_API_VERSION is 12 and KVM_CREATE_VM gives an fd', () => {
    const O_RDWR = 2,
      O_CLOEXEC = 0o2000000;
    const kvm = c.open('/dev/kvm', O_RDWR | O_CLOEXEC, 0); // owned here, closed below
    expect(kvm, `open /dev/kvm errno`).to.be.greaterThanOrEqual(0);
    try {
      expect(c.ioctlInt(kvm, 0xae00, 0)).to.equal(12); // KVM_GET_API_VERSION
      const vm = c.ioctlInt(kvm, 0xae01, 0); // KVM_CREATE_VM, type 0; the VM fd is owned here
      expect(vm, 'KVM_CREATE_VM').to.be.greaterThanOrEqual(0);
      // a vCPU too: the VM is real, not just an fd
      const vcpu = c.ioctlInt(vm, 0xae41, 0); // KVM_CREATE_VCPU
      expect(vcpu, 'KVM_CREATE_VCPU').to.be.greaterThanOrEqual(0);
      // the kernel keeps track of it: the same vCPU id again is refused with EEXIST
      expect(c.ioctlInt(vm, 0xae41, 0), 'KVM_CREATE_VCPU with the same id').to.equal(-1);
      expect(errnoName(errno())).to.equal('EEXIST');
      c.close(vcpu);
      c.close(vm);
    } finally {
      c.close(kvm);
    }
  });

  const script = 'echo "guest says $((6 * 7))"; uname -r; grep -c processor /proc/cpuinfo; exit 5\n';

  it('QEMU-KVM boots the kit bzImage (-M pc) to init and returns the script output and status', async () => {
    const initrd = writeInitramfsWithScript(kit, script, join(tmp, 'bz-initrd.gz'));
    const r = await bootVm({
      accel: 'kvm',
      machine: 'pc',
      kernel: kit.bzImage,
      initramfs: initrd,
      memoryMiB: 512,
      timeoutMs: 150_000,
    });
    const report = describeBoot(r);
    expect(r.initReached, report).to.equal(true);
    expect(r.exitCode, report).to.equal(5);
    expect(r.result, report).to.include('guest says 42');
    expect(r.result, report).to.include(kit.kernelVersion);
  });

  it('QEMU-KVM boots the kit vmlinux through PVH (-M microvm) to init and returns the script output', async () => {
    const initrd = writeInitramfsWithScript(kit, script, join(tmp, 'pvh-initrd.gz'));
    const r = await bootVm({
      accel: 'kvm',
      kernel: kit.vmlinux,
      initramfs: initrd,
      memoryMiB: 512,
      timeoutMs: 150_000,
    });
    const report = describeBoot(r);
    expect(r.initReached, report).to.equal(true);
    expect(r.exitCode, report).to.equal(5);
    expect(r.result, report).to.include('guest says 42');
  });

  it('passes a short script on the kernel command line (tsvmm.script=<base64>)', async () => {
    const b64 = Buffer.from('echo from-cmdline; exit 0\n').toString('base64');
    const r = await bootVm({
      accel: 'kvm',
      kernel: kit.vmlinux,
      initramfs: kit.initramfs,
      memoryMiB: 256,
      timeoutMs: 150_000,
      append: `console=ttyS0 panic=-1 quiet tsvmm.script=${b64}`,
    });
    expect(r.exitCode, describeBoot(r)).to.equal(0);
    expect(r.result?.trim(), describeBoot(r)).to.equal('from-cmdline');
  });

  it('reports a truncated bzImage: our header check names it, and the boot never reaches init', async () => {
    const full = readFileSync(kit.bzImage);
    const cut = join(tmp, 'truncated-bzImage');
    writeFileSync(cut, full.subarray(0, Math.floor(full.length / 3)));
    expect(() => parseSetupHeader(readFileSync(cut))).to.throw(/truncated/);
    const r = await bootVm({
      accel: 'kvm',
      machine: 'pc',
      kernel: cut,
      initramfs: kit.initramfs,
      memoryMiB: 256,
      timeoutMs: 40_000,
    });
    expect(r.initReached).to.equal(false);
    expect(describeBoot(r)).to.match(/without reaching init|before the guest reached init/);
  });

  it('times out with a clear report when the guest never reaches init (unusable initramfs, panic=0 hangs)', async () => {
    const junk = join(tmp, 'junk-initrd');
    writeFileSync(junk, Buffer.alloc(4096, 0x5a));
    const r = await bootVm({
      accel: 'kvm',
      kernel: kit.vmlinux,
      initramfs: junk,
      memoryMiB: 256,
      timeoutMs: 45_000,
      append: 'console=ttyS0 panic=0', // not quiet: the report shows how far the kernel got
    });
    const report = describeBoot(r, 'junk guest');
    expect(r.status).to.equal('timeout');
    expect(r.initReached).to.equal(false);
    expect(report).to.match(/junk guest: timed out after \d+\.\d s without reaching init/);
    const lastLine = r.console.trimEnd().split('\n').pop()!.replace(/\r$/, '');
    expect(lastLine.length, 'the kernel printed nothing in 45 s').to.be.greaterThan(0);
    expect(report).to.include('last console lines:').and.include(lastLine);
  });
});
