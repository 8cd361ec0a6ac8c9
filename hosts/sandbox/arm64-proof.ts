/**
 * The arm64 proof's driver inside the arm64 L1 (issue 20; started by hosts/sandbox/arm64-boot.sandbox.test.ts
 * as `node dist/hosts/sandbox/arm64-proof-main.js <dir>`). Two `vmm run`s of the arm64 machine, as users
 * start them:
 *  - 'disks', 1 vCPU: a raw and a qcow2 virtio-blk disk over virtio-mmio; the guest prints each disk's
 *    digest, writes a mark into each, powers off (PSCI SYSTEM_OFF);
 *  - 'violation', 1 vCPU: the test-only privilege probe tries execve once the machine has started: seccomp kills
 *    the VMM (SIGSYS) and its --landlock parent says so in one line naming the call;
 *  - 'net', 2 vCPUs: virtio-net on a tap made here; the guest moves NET_BYTES each way over TCP to servers in
 *    this process (md5 on both sides), then reboots (PSCI SYSTEM_RESET, onReset: exit).
 * Both run as users run them: with the seccomp filters on (the process's and the vCPU threads'), the 'disks' run also
 * with `--landlock`. While the guest runs, the driver reads the VMM's /proc status (NoNewPrivs, Seccomp) and its
 * threads' filter counts, and afterwards the kernel's seccomp records (`TSVMM_ARM64_SECCOMP=log`: what the filter
 * would have refused, to build the lists).
 * It prints one `ARM64-PROOF <json>` line (ProofReport); the host judges it and the disk files (qemu-img).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { openKernelLog, seccompRecords } from '../../core/security/seccomp-report.js';
import { removeHostTap, upHostTap, xorshiftBytes } from '../../test/harness/host-net.js';
import { filtersPerThread, privilegeStatus } from '../../test/privilege/unprivileged.js';

/** The proof's fixed facts, shared by the driver in L1 and the test on the host. */
export const PROOF = {
  tap: 'tsvmmarm0',
  hostIp: '192.168.78.1',
  guestIp: '192.168.78.2',
  upPort: 5611,
  downPort: 5612,
  /** Bytes moved each way over the network. */
  netBytes: 64 << 20,
  /** Each disk's virtual size; the first DATA_BYTES hold proofDisk(), the rest zeros. */
  diskBytes: 4 << 20,
  dataBytes: 1 << 20,
  /** The 512-byte sector the guest writes its mark into (3 MiB: a cluster the qcow2 file does not hold yet). */
  markSector: 6144,
  /** The test-only privilege probe plugin (test/privilege/fixtures/probe) in L1; its manifest is staged there. */
  probePlugin: '/tsvmm/project/test/privilege/fixtures/probe',
  /** Each VMM run's limit inside L1. */
  disksTimeoutMs: 240_000,
  violationTimeoutMs: 180_000,
  netTimeoutMs: 540_000,
} as const;

/** The disks' known content (DATA_BYTES of a pattern). */
export function proofData(): Buffer {
  const b = Buffer.alloc(PROOF.dataBytes);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 9)) & 0xff;
  return b;
}

/** The mark the guest writes into the disk with virtio serial `serial` (one sector, zero padded). */
export function proofMark(serial: string): Buffer {
  const s = Buffer.alloc(512);
  s.write(`ARM64WROTE-${serial}\n`);
  return s;
}

/** What a disk must hold after the guest's write: the data, zeros, the mark at markSector. */
export function expectedDisk(serial: string): Buffer {
  const d = Buffer.alloc(PROOF.diskBytes);
  proofData().copy(d);
  proofMark(serial).copy(d, PROOF.markSector * 512);
  return d;
}

const GUEST_ID =
  'echo "ARM64-GUEST cpus=$(grep -c ^processor /proc/cpuinfo) arch=$(uname -m) uart=$(grep -c ttyS0 /proc/interrupts)"';

/** The 'disks' guest: per disk (by its virtio serial) the digest of its whole content, then the mark. */
export const DISKS_SCRIPT = `${GUEST_ID}
for d in /sys/block/vd*; do
  n=\${d##*/}; s=$(cat $d/serial)
  echo "ARM64-DISK $s $(head -c ${PROOF.diskBytes} /dev/$n | sha256sum | cut -d' ' -f1)"
  echo "ARM64WROTE-$s" | dd of=/dev/$n bs=512 seek=${PROOF.markSector} conv=sync,fsync 2>/dev/null && echo "ARM64-DISK-WRITTEN $s"
done`;

/**
 * The 'net' guest: ping, then `bytes` up (md5 printed) on CPU 1 while `bytes` come down (md5 printed) on CPU 0:
 * both ways at once halve the run in the nested sandbox, where each exit to the VMM costs milliseconds.
 */
export const netScript = (bytes: number = PROOF.netBytes): string => `${GUEST_ID}
set -e
ip link set eth0 up
ip addr add ${PROOF.guestIp}/24 dev eth0
ping -c 2 -W 10 ${PROOF.hostIp} >/dev/null && echo ARM64-PING-OK
head -c ${bytes} /dev/urandom > /tmp/up
echo "ARM64-UP-MD5 $(md5sum /tmp/up | cut -d' ' -f1)"
taskset 2 timeout ${PROOF.netTimeoutMs / 1000 - 60} nc ${PROOF.hostIp} ${PROOF.upPort} < /tmp/up > /dev/null &
up=$!
down=$(taskset 1 timeout ${PROOF.netTimeoutMs / 1000 - 60} nc ${PROOF.hostIp} ${PROOF.downPort} < /dev/null | md5sum)
echo "ARM64-DOWN-MD5 \${down%% *}"
wait $up && echo ARM64-UP-DONE`;

/** A run's config for `vmm run` (the kit's kernel, `initramfs` with the guest's script appended). */
export function proofYaml(
  kind: 'disks' | 'net' | 'violation',
  p: { kernel: string; initramfs: string; raw?: string; qcow2?: string },
): string {
  const exit = kind === 'net' ? ' tsvmm.exit=reboot' : '';
  const devices =
    kind === 'violation'
      ? [{ path: PROOF.probePlugin }]
      : kind === 'disks'
        ? [
            { name: 'raw-disk' },
            { name: 'qcow' },
            { name: 'virtio-blk', id: 'raw0', config: { path: p.raw, format: 'raw', serial: 'arm64-raw' } },
            { name: 'virtio-blk', id: 'qcow0', config: { path: p.qcow2, format: 'qcow2', serial: 'arm64-qcow2' } },
          ]
        : [
            {
              name: 'virtio-net',
              config: { mac: '52:54:00:78:00:02', backend: { kind: 'tap', name: PROOF.tap } },
            },
          ];
  return stringify({
    machine: { vcpus: kind === 'net' ? 2 : 1, memory: kind === 'net' ? '384M' : '256M', onReset: 'exit' },
    boot: {
      kernel: p.kernel,
      initramfs: p.initramfs,
      cmdline: `console=ttyS0 earlycon panic=1 quiet tsvmm.bootmarker=0${exit}`,
    },
    plugins: [
      { name: 'kvm' },
      { name: 'arm64' },
      { name: 'serial', config: { port: 'COM1', mmio: 0x0900_0000, console: { kind: 'stdio' } } },
      ...(kind === 'violation' ? [] : [{ name: 'virtio-mmio' }]),
      ...devices,
    ],
  });
}

/** One `vmm run`: its exit status (null: killed at the limit), stop reason, guest marker lines, seconds. */
export interface ProofRun {
  name: string;
  rc: number | null;
  /** The signal that ended it (SIGSYS: seccomp killed it). */
  signal?: string;
  stopped?: string;
  lines: string[];
  seconds: number;
  /** The console's last lines (evidence on failure). */
  tail: string;
  /** The running VMM's privilege fields (NoNewPrivs, Seccomp, ...) and its threads per seccomp filter count. */
  privilege?: { status: Record<string, string>; filters: Record<string, number> } | { error: string };
  /** The kernel's seccomp records of the run, one per call and action: `log` mode's findings, or what killed it. */
  seccomp: { syscall: number; name?: string; action: string; count: number }[];
}

/** How the proof's VMMs run: `--seccomp MODE` (default true: the filters on), `--landlock`, extra environment. */
export interface ProofSecurity {
  seccomp: 'true' | 'log';
  landlock: boolean;
  env?: Record<string, string>;
}

/** The VMM process under `pid`: `vmm run --landlock` runs it as its child, else `pid` itself. */
function vmmPid(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return children.length ? Number(children[0]) : pid;
}

/** The privilege fields of the VMM under `pid`, read while it runs its guest. */
function readPrivilege(pid: number): ProofRun['privilege'] {
  try {
    const vmm = vmmPid(pid);
    return { status: privilegeStatus(`/proc/${vmm}/status`), filters: filtersPerThread(vmm) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Seccomp records counted per call and action (LOG, KILL_PROCESS, ...). */
function summarise(records: ReturnType<typeof seccompRecords>): ProofRun['seccomp'] {
  const out = new Map<string, ProofRun['seccomp'][number]>();
  for (const r of records) {
    const action = r.action === 0x7ffc_0000 ? 'log' : r.action === 0x8000_0000 ? 'kill' : `0x${r.action.toString(16)}`;
    const key = `${r.syscall} ${action}`;
    const seen = out.get(key) ?? { syscall: r.syscall, name: r.name, action, count: 0 };
    seen.count++;
    out.set(key, seen);
  }
  return [...out.values()];
}

/** What the driver reports: the runs, and the host side of the network transfers. */
export interface ProofReport {
  runs: ProofRun[];
  net?: { upMd5?: string; upSeconds?: number; downMd5: string; downSeconds?: number };
}

/** The stop reason of the VMM's 'machine stopped' log line (JSON when not on a terminal, else pretty). */
export function stoppedAs(log: string): string | undefined {
  const line = log.split('\n').find((l) => l.includes('machine stopped'));
  return line && /"?reason"?[=:]"?([a-z-]+)/.exec(line)?.[1];
}

/**
 * Runs `vmm run <config>` under the limit with `sec`'s flags; what it showed. Once the guest has said who it is, the
 * VMM's /proc status is read (its vCPU threads run by then).
 */
export function runVmm(name: string, config: string, timeoutMs: number, sec: ProofSecurity): Promise<ProofRun> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const kmsg = openKernelLog();
    if (kmsg !== undefined) seccompRecords(kmsg); // from here on: what came before is an earlier run's
    const flags = ['--seccomp', sec.seccomp, ...(sec.landlock ? ['--landlock'] : [])];
    const child = spawn(process.execPath, ['bin/vmm.js', 'run', ...flags, config], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...sec.env },
    });
    let out = '';
    let privilege: ProofRun['privilege'];
    const add = (b: Buffer) => {
      out += b.toString('latin1');
      if (!privilege && /^ARM64-GUEST /m.test(out)) privilege = readPrivilege(child.pid!);
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    const timer = setTimeout(() => {
      // under --landlock the VMM is the child's child: end both
      try {
        process.kill(vmmPid(child.pid!), 'SIGKILL');
      } catch {
        // already gone
      }
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // every record since this run started: in L1 only the proof's VMMs have filters
      const seccomp = kmsg === undefined ? [] : summarise(seccompRecords(kmsg));
      if (kmsg !== undefined) closeSync(kmsg);
      const lines = out.split(/\r?\n/);
      resolve({
        name,
        rc: code,
        signal: signal ?? undefined,
        stopped: stoppedAs(out),
        lines: lines.filter((l) => /^ARM64-|^probe |TSVMM-EXIT|landlock \(ABI|killed by seccomp/.test(l)),
        seconds: (Date.now() - t0) / 1000,
        tail: lines.slice(-25).join('\n'),
        privilege,
        seccomp,
      });
    });
  });
}

/** A progress line on L1's console (evidence when a transfer stalls). */
function progress(way: string, bytes: number, t0: number): void {
  process.stdout.write(`ARM64-NET ${way} ${bytes >> 20} MiB after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

/** The host end of the transfers: UP receives NET_BYTES (md5), DOWN sends NET_BYTES of a known stream. */
function netServers(bytes: number): {
  servers: net.Server[];
  up: Promise<{ md5: string; seconds: number }>;
  downMd5: string;
  down: { seconds?: number };
} {
  const down: { seconds?: number } = {};
  const servers: net.Server[] = [];
  const up = new Promise<{ md5: string; seconds: number }>((resolve) => {
    servers.push(
      net
        .createServer((sock) => {
          const h = createHash('md5');
          let got = 0;
          let t0 = 0;
          sock.on('data', (d: Buffer) => {
            t0 ||= Date.now();
            const take = d.subarray(0, bytes - got);
            h.update(take);
            if (got >> 23 !== (got + take.length) >> 23) progress('up', got + take.length, t0);
            got += take.length;
            if (got === bytes) {
              resolve({ md5: h.digest('hex'), seconds: (Date.now() - t0) / 1000 });
              sock.end();
            }
          });
        })
        .listen(PROOF.upPort, PROOF.hostIp),
    );
  });
  const chunks: Buffer[] = [];
  const h = createHash('md5');
  for (let i = 0; i < bytes >> 20; i++) {
    chunks.push(xorshiftBytes(i + 1, 1 << 20));
    h.update(chunks[i]!);
  }
  servers.push(
    net
      .createServer({ allowHalfOpen: true }, (sock) => {
        const t0 = Date.now();
        sock.on('close', () => (down.seconds = (Date.now() - t0) / 1000));
        let i = 0;
        const push = (): void => {
          while (i < chunks.length) {
            if (i % 8 === 0) progress('down', i << 20, t0);
            if (!sock.write(chunks[i++])) return void sock.once('drain', push);
          }
          sock.end();
        };
        push();
      })
      .listen(PROOF.downPort, PROOF.hostIp),
  );
  return { servers, up, downMd5: h.digest('hex'), down };
}

/**
 * The proof in L1: `dir` holds l2-disks.cpio.gz, l2-net.cpio.gz (the kit's initramfs with each guest's script),
 * disk.raw and disk.qcow2 (written in place); `kernel` is the kit's Image.
 */
export async function runProof(
  dir: string,
  kernel: string,
  netBytes: number = PROOF.netBytes,
  seccomp: ProofSecurity['seccomp'] = 'true',
): Promise<ProofReport> {
  const base = { kernel, initramfs: join(dir, 'l2-disks.cpio.gz') };
  const disksYaml = join(dir, 'disks.yaml');
  writeFileSync(disksYaml, proofYaml('disks', { ...base, raw: join(dir, 'disk.raw'), qcow2: join(dir, 'disk.qcow2') }));
  const runs = [await runVmm('disks', disksYaml, PROOF.disksTimeoutMs, { seccomp, landlock: true })];
  if (seccomp === 'true') {
    // a violation: the probe plugin tries execve once the machine has started; the filter kills the VMM and its
    // --landlock parent names the call
    const violationYaml = join(dir, 'violation.yaml');
    writeFileSync(violationYaml, proofYaml('violation', base));
    const env = { TSVMM_PROBE: 'status,execve', VMM_BUNDLE: '0' }; // the bundle maps no test plugins
    runs.push(await runVmm('violation', violationYaml, PROOF.violationTimeoutMs, { seccomp, landlock: true, env }));
  }
  const netYaml = join(dir, 'net.yaml');
  writeFileSync(netYaml, proofYaml('net', { ...base, initramfs: join(dir, 'l2-net.cpio.gz') }));
  upHostTap(PROOF.tap, PROOF.hostIp);
  const s = netServers(netBytes);
  try {
    const run = await runVmm('net', netYaml, PROOF.netTimeoutMs, { seccomp, landlock: false });
    runs.push(run);
    const up = await Promise.race([s.up, new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000))]);
    return { runs, net: { upMd5: up?.md5, upSeconds: up?.seconds, downMd5: s.downMd5, downSeconds: s.down.seconds } };
  } finally {
    for (const sv of s.servers) sv.close();
    removeHostTap(PROOF.tap);
  }
}
