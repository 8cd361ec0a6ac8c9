/**
 * Sandbox tier, arm64 (issue 20): the arm64 proof in ONE arm64 L1 (hosts/sandbox/arm64.ts), driven there by
 * hosts/sandbox/arm64-proof.ts. `vmm run` of the arm64 machine boots Debian's arm64 cloud kernel to the guest
 * kit's init twice:
 *  - 1 vCPU, a raw and a qcow2 virtio-blk disk (virtio-mmio, unchanged plugins): the guest reads both exactly
 *    and writes a mark into each; back here the raw file holds it and qemu-img (check, convert) finds it in
 *    the qcow2 file; the guest powers off: PSCI SYSTEM_OFF -> 'poweroff', exit 0;
 *  - 2 vCPUs, virtio-net on a tap in L1: 64 MiB each way over TCP, md5 equal on both sides; the guest
 *    reboots: PSCI SYSTEM_RESET -> 'reset', exit 0 (onReset: exit), as on x86.
 * Both run with the seccomp filters on (issue 19: the process filter on every thread, the vCPU threads' own on top;
 * NoNewPrivs 1, Seccomp 2 read from the running VMM's /proc status), the first also under `--landlock`.
 * `TSVMM_ARM64_SECCOMP=log` runs them with `--seccomp log` and prints what the kernel logged (to build the lists).
 * Each VMM run is bounded inside L1, L1 by the deadline here; a failure prints the evidence (console tails).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Arm64Kit } from '../guestkit/arm64.js';
import { scriptInitramfs } from '../guestkit/kit.js';
import { arm64QemuArgs, prepareArm64Sandbox, runInArm64Sandbox } from './arm64.js';
import {
  DISKS_SCRIPT,
  expectedDisk,
  netScript,
  PROOF,
  proofData,
  stoppedAs,
  type ProofReport,
  type ProofRun,
} from './arm64-proof.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('arm64 sandbox: the L1 QEMU command line and the proof driver', () => {
  it('asks for EL2 (virtualization=on), a GICv3, cheap pointer authentication, the kit, the collect disk', () => {
    const kit = { image: '/k/Image' } as Parameters<typeof arm64QemuArgs>[0];
    const a = arm64QemuArgs(kit, '/k/l1.cpio', { cpus: 2, memoryMiB: 2048 }, '/k/c.img').join(' ');
    expect(a).to.contain('-M virt,virtualization=on,gic-version=3');
    expect(a).to.contain('-cpu max,pauth-impdef=on');
    expect(a).to.contain('-kernel /k/Image -initrd /k/l1.cpio');
    expect(a).to.contain('-smp 2 -m 2048');
    expect(a).to.contain('-drive file=/k/c.img,format=raw,if=none,id=collect -device virtio-blk-device,drive=collect');
  });
  it("reads the stop reason from the VMM's log in both formats", () => {
    const json = '{"level":30,"plugin":"arm64","reason":"poweroff","msg":"machine stopped"}';
    expect(stoppedAs(`x\n  ${json}\n`)).to.equal('poweroff');
    expect(stoppedAs('08:16:43 INFO arm64: machine stopped reason=reset')).to.equal('reset');
    expect(stoppedAs('rc=0\n')).to.equal(undefined);
  });
  it('expects the data, zeros, and the mark in its sector', () => {
    const d = expectedDisk('x');
    expect(d.length).to.equal(PROOF.diskBytes);
    expect(d.subarray(0, PROOF.dataBytes).equals(proofData())).to.equal(true);
    expect(d.subarray(PROOF.markSector * 512, PROOF.markSector * 512 + 13).toString()).to.equal('ARM64WROTE-x\n');
    expect(d.subarray(PROOF.dataBytes, PROOF.markSector * 512).every((b) => b === 0)).to.equal(true);
  });
});

describe('arm64 sandbox: the proof in an arm64 L1 (raw + qcow2, 64 MiB each way, poweroff, reboot)', function () {
  this.timeout(900_000);
  let tmp: string;
  let kit: Arm64Kit;
  before(function () {
    // first run: the arm64 kernel and busybox (apt-get download), Node and koffi for arm64 (npm pack)
    this.timeout(600_000);
    kit = prepareArm64Sandbox();
    tmp = mkdtempSync(join(tmpdir(), 'tsvmm-arm64-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('boots Debian arm64 (1, 2 vCPUs), reads and writes both disks, moves the data, stops as asked', async () => {
    const initramfs = readFileSync(kit.initramfs);
    const disk = Buffer.alloc(PROOF.diskBytes);
    proofData().copy(disk);
    const raw = join(tmp, 'disk.raw');
    const qcow2 = join(tmp, 'disk.qcow2');
    writeFileSync(raw, disk);
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, qcow2], { timeout: 60_000 });
    const r = await runInArm64Sandbox(
      'timeout 840 node dist/hosts/sandbox/arm64-proof-main.js /tsvmm /tsvmm/kit/Image',
      {
        timeoutMs: 870_000,
        files: {
          '/tsvmm/l2-disks.cpio.gz': Buffer.concat([initramfs, scriptInitramfs(DISKS_SCRIPT)]),
          '/tsvmm/l2-net.cpio.gz': Buffer.concat([initramfs, scriptInitramfs(netScript())]),
          '/tsvmm/disk.raw': disk,
          '/tsvmm/disk.qcow2': readFileSync(qcow2),
          // the privilege probe's manifest (L1 gets the source tree's manifests of plugins/ and hosts/ only)
          [`${PROOF.probePlugin}/vmm-plugin.json`]: readFileSync('test/privilege/fixtures/probe/vmm-plugin.json'),
        },
        collect: ['/tsvmm/disk.raw', '/tsvmm/disk.qcow2'],
        env: { TSVMM_ARM64_SECCOMP: process.env.TSVMM_ARM64_SECCOMP === 'log' ? 'log' : 'true' },
        // TSVMM_ARM64_LIVE=1: L1's console as it comes (debugging)
        onOutput: process.env.TSVMM_ARM64_LIVE === '1' ? (t) => process.stdout.write(t) : undefined,
      },
    );
    const tail = r.console.split('\n').slice(-40).join('\n');
    expect(r.timedOut, `L1 timed out; console tail:\n${tail}`).to.equal(false);
    expect(r.exitCode, `L1's command failed; console tail:\n${tail}`).to.equal(0);
    const json = /^ARM64-PROOF (.*)\r?$/m.exec(r.console)?.[1];
    expect(json, `no report from the driver; console tail:\n${tail}`).to.be.a('string');
    const report = JSON.parse(json!) as ProofReport;
    const run = (name: string): ProofRun => report.runs.find((x) => x.name === name)!;
    const show = (x: ProofRun) =>
      `${x.name}: rc=${x.rc} ${x.signal ?? ''} ${x.seconds.toFixed(1)} s\n${x.lines.join('\n')}\n${x.tail}\n` +
      `the running VMM: ${JSON.stringify(x.privilege)}\nseccomp records: ${JSON.stringify(x.seccomp)}`;
    process.stdout.write(`${report.runs.map(show).join('\n')}\nnet: ${JSON.stringify(report.net)}\n`);
    // least privilege, read while each guest ran: no_new_privs and a filter on every thread; each vCPU thread has
    // its own on top; nothing refused (or, in log mode, nothing that would have been)
    for (const [x, vcpus] of [
      [run('disks'), 1],
      [run('net'), 2],
    ] as const) {
      const p = x.privilege && 'status' in x.privilege ? x.privilege : undefined;
      expect(p, show(x)).to.not.equal(undefined);
      expect(p!.status.NoNewPrivs, show(x)).to.equal('1');
      expect(p!.status.Seccomp, show(x)).to.equal('2');
      expect(p!.filters['2'], `vCPU threads with their own filter: ${show(x)}`).to.equal(vcpus);
      expect(Object.keys(p!.filters).sort(), `every thread has the process filter: ${show(x)}`).to.deep.equal([
        '1',
        '2',
      ]);
      expect(x.seccomp, `seccomp records: ${show(x)}`).to.deep.equal([]);
    }
    expect(
      run('disks').lines.some((l) => /landlock \(ABI \d+\): the filesystem is limited to \d+ paths/.test(l)),
      show(run('disks')),
    ).to.equal(true);
    // a violation kills the VMM, and its parent says which call (execve is 221 on aarch64)
    const bad = run('violation');
    expect(bad, 'the violation run').to.not.equal(undefined);
    expect(
      bad.lines.find((l) => l.startsWith('probe status:')),
      show(bad),
    ).to.match(/NoNewPrivs: 1; Seccomp: 2/);
    expect(bad.signal, show(bad)).to.equal('SIGSYS');
    expect(
      bad.lines.find((l) => l.includes('killed by seccomp')),
      show(bad),
    ).to.match(/^vmm: the VMM \(pid \d+\) was killed by seccomp \(SIGSYS\), syscall 221 \(execve\)$/);
    expect(
      bad.lines.some((l) => l.startsWith('probe execve:')),
      'nothing after the call',
    ).to.equal(false);

    const disks = run('disks');
    const line = (x: ProofRun, prefix: string) => x.lines.find((l) => l.startsWith(prefix));
    expect(disks.rc, show(disks)).to.equal(0);
    expect(disks.stopped, show(disks)).to.equal('poweroff');
    expect(line(disks, 'ARM64-GUEST'), show(disks)).to.equal('ARM64-GUEST cpus=1 arch=aarch64 uart=1');
    for (const serial of ['arm64-raw', 'arm64-qcow2']) {
      expect(disks.lines, show(disks)).to.include(`ARM64-DISK ${serial} ${sha256(disk)}`);
      expect(disks.lines, show(disks)).to.include(`ARM64-DISK-WRITTEN ${serial}`);
    }
    // the guest's writes reached the files: the raw file byte for byte, the qcow2 file as qemu-img reads it
    const rawBack = r.files.get('/tsvmm/disk.raw');
    expect(rawBack && sha256(rawBack), 'raw disk after the run').to.equal(sha256(expectedDisk('arm64-raw')));
    const qcowBack = r.files.get('/tsvmm/disk.qcow2');
    expect(qcowBack, 'qcow2 disk collected').to.not.equal(undefined);
    writeFileSync(qcow2, qcowBack!);
    execFileSync('qemu-img', ['check', '-q', qcow2], { timeout: 60_000 });
    execFileSync('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'raw', qcow2, join(tmp, 'back.raw')]);
    expect(sha256(readFileSync(join(tmp, 'back.raw'))), 'qcow2 disk after the run').to.equal(
      sha256(expectedDisk('arm64-qcow2')),
    );

    const net = run('net');
    expect(net.rc, show(net)).to.equal(0);
    expect(net.stopped, show(net)).to.equal('reset');
    expect(line(net, 'ARM64-GUEST'), show(net)).to.equal('ARM64-GUEST cpus=2 arch=aarch64 uart=1');
    expect(net.lines, show(net)).to.include('ARM64-PING-OK');
    expect(line(net, 'ARM64-UP-MD5'), show(net)).to.equal(`ARM64-UP-MD5 ${report.net?.upMd5}`);
    expect(line(net, 'ARM64-DOWN-MD5'), show(net)).to.equal(`ARM64-DOWN-MD5 ${report.net?.downMd5}`);
    expect(net.lines, show(net)).to.include('ARM64-UP-DONE');
  });
});
