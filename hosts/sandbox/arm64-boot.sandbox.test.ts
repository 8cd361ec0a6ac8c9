/**
 * Sandbox tier, arm64 (issue 20): in ONE arm64 L1 (hosts/sandbox/arm64.ts), `vmm run` of the arm64 machine
 * boots Debian's arm64 cloud kernel to the guest kit's init with 1 vCPU (the guest powers off: PSCI
 * SYSTEM_OFF -> 'poweroff', exit 0) and with 2 vCPUs (the guest sees both CPUs and reboots: PSCI
 * SYSTEM_RESET -> 'reset', exit 0 with onReset: exit). The 1-vCPU guest also reads a raw virtio-blk disk
 * (virtio-mmio, announced in the device tree) of known content exactly and writes a mark the file then
 * holds. Each VMM run is bounded inside L1 (timeout), L1 by the deadline here; a failure prints the console.
 * About 5 minutes on the 2-core project machine, so it exists only with TSVMM_ARM64_SANDBOX=1 (the lead decides
 * whether CI sets it; CI then also needs `dpkg --add-architecture arm64` before `apt-get update`).
 */
import { expect } from 'chai';
import { stringify } from 'yaml';
import { arm64GuestKit } from '../guestkit/arm64.js';
import { scriptInitramfs } from '../guestkit/kit.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { arm64QemuArgs, runInArm64Sandbox } from './arm64.js';

/** What the guest reports: its CPUs, the UART's interrupt, and, with a disk, its digest; then it writes a mark. */
const GUEST_SCRIPT = `echo "ARM64-GUEST cpus=$(grep -c ^processor /proc/cpuinfo) arch=$(uname -m) uart=$(grep -c ttyS0 /proc/interrupts)"
if [ -b /dev/vda ]; then
  echo "ARM64-DISK $(head -c 1048576 /dev/vda | sha256sum | cut -d' ' -f1)"
  echo ARM64WROTE | dd of=/dev/vda bs=512 seek=1024 conv=fsync 2>/dev/null && echo ARM64-DISK-WRITTEN
fi`;

/** 1 MiB of known content for the raw disk. */
const DISK = Buffer.alloc(1 << 20).map((_, i) => (i * 7 + (i >> 9)) & 0xff);

/** The stop reason of the VMM's 'machine stopped' log line (JSON when not on a terminal, else pretty). */
function stoppedAs(log: string): string | undefined {
  const line = log.split('\n').find((l) => l.includes('machine stopped'));
  return line && /"?reason"?[=:]"?([a-z-]+)/.exec(line)?.[1];
}

const yaml = (vcpus: number, exit: 'poweroff' | 'reboot', disk?: string) =>
  stringify({
    machine: { vcpus, memory: '256M', onReset: 'exit' },
    boot: {
      kernel: '/tsvmm/kit/Image',
      initramfs: '/tsvmm/l2.cpio.gz',
      cmdline: `console=ttyS0 earlycon panic=1 quiet tsvmm.bootmarker=0${exit === 'reboot' ? ' tsvmm.exit=reboot' : ''}`,
    },
    plugins: [
      { name: 'kvm' },
      { name: 'arm64' },
      { name: 'serial', config: { port: 'COM1', mmio: 0x0900_0000, console: { kind: 'stdio' } } },
      { name: 'virtio-mmio' },
      ...(disk
        ? [
            { name: 'raw-disk' },
            { name: 'virtio-blk', id: 'disk0', config: { path: disk, format: 'raw', serial: 'arm64-raw' } },
          ]
        : []),
    ],
  });

describe('arm64 sandbox: the L1 QEMU command line', () => {
  it('asks for EL2 (virtualization=on), a GICv3, cheap pointer authentication and the kit kernel', () => {
    const kit = { image: '/k/Image' } as Parameters<typeof arm64QemuArgs>[0];
    const a = arm64QemuArgs(kit, '/k/l1.cpio', { cpus: 2, memoryMiB: 2048 }).join(' ');
    expect(a).to.contain('-M virt,virtualization=on,gic-version=3');
    expect(a).to.contain('-cpu max,pauth-impdef=on');
    expect(a).to.contain('-kernel /k/Image -initrd /k/l1.cpio');
    expect(a).to.contain('-smp 2 -m 2048');
  });
  it("reads the stop reason from the VMM's log in both formats", () => {
    const json = '{"level":30,"plugin":"arm64","reason":"poweroff","msg":"machine stopped"}';
    expect(stoppedAs(`x\n  ${json}\n`)).to.equal('poweroff');
    expect(stoppedAs('08:16:43 INFO arm64: machine stopped reason=reset')).to.equal('reset');
    expect(stoppedAs('rc=0\n')).to.equal(undefined);
  });
});

// The boots cost ~5 minutes: only with TSVMM_ARM64_SANDBOX=1 (the lead decides about CI).
if (process.env.TSVMM_ARM64_SANDBOX === '1') describeArm64Boot();

function describeArm64Boot(): void {
  describe('arm64 sandbox: the arm64 machine boots Debian arm64 (1 and 2 vCPUs, poweroff and reboot, a raw disk)', function () {
    this.timeout(590_000);
    it('reaches the kit init, sees its CPUs and the UART interrupt, and ends with the right stop reasons', async () => {
      const kit = arm64GuestKit();
      const l2 = Buffer.concat([readFileSync(kit.initramfs), scriptInitramfs(GUEST_SCRIPT)]);
      const run = (n: number, file: string) =>
        `timeout 240 node bin/vmm.js run --seccomp false ${file} </dev/null > /tmp/vmm${n}.log 2>&1; ` +
        `echo "ARM64-RUN ${n} rc=$?"; grep -E "ARM64-GUEST|machine stopped|TSVMM-INIT" /tmp/vmm${n}.log | sed 's/^/  /'; ` +
        `tail -n 5 /tmp/vmm${n}.log | sed 's/^/  tail: /'; grep -E "ARM64-DISK" /tmp/vmm${n}.log | sed 's/^/  /'; ` +
        `echo "  HOSTREAD $(dd if=/tsvmm/disk.raw bs=512 skip=1024 count=1 2>/dev/null | head -c 10)"`;
      const r = await runInArm64Sandbox([run(1, '/tsvmm/one.yaml'), run(2, '/tsvmm/two.yaml')].join('\n'), {
        timeoutMs: 570_000,
        files: {
          '/tsvmm/l2.cpio.gz': l2,
          '/tsvmm/one.yaml': yaml(1, 'poweroff', '/tsvmm/disk.raw'),
          '/tsvmm/two.yaml': yaml(2, 'reboot'),
          '/tsvmm/disk.raw': DISK,
        },
      });
      const tail = r.console.split('\n').slice(-40).join('\n');
      expect(r.timedOut, `L1 timed out; console tail:\n${tail}`).to.equal(false);
      expect(r.exitCode, `L1's command did not finish; console tail:\n${tail}`).to.equal(0);
      const section = (n: number) => r.console.split(`ARM64-RUN ${n} `)[1]?.split('ARM64-RUN')[0] ?? '';
      process.stdout.write(`arm64 runs:\n${section(1)}\n${section(2)}\n`);
      expect(section(1), tail).to.match(/^rc=0/);
      expect(section(1)).to.match(/ARM64-GUEST cpus=1 arch=aarch64 uart=1/);
      expect(stoppedAs(section(1)), section(1)).to.equal('poweroff');
      // virtio-blk over virtio-mmio (unchanged plugins) on the device tree: read exactly, write reaches the file
      expect(section(1)).to.contain(`ARM64-DISK ${createHash('sha256').update(DISK).digest('hex')}`);
      expect(section(1)).to.contain('ARM64-DISK-WRITTEN');
      expect(section(1)).to.contain('HOSTREAD ARM64WROTE');
      expect(section(2), tail).to.match(/^rc=0/);
      expect(section(2)).to.match(/ARM64-GUEST cpus=2 arch=aarch64 uart=1/);
      expect(stoppedAs(section(2)), section(2)).to.equal('reset');
    });
  });
}
