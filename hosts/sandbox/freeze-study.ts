/**
 * The L1 freeze study (hosts/sandbox/README.md "Known problem", issue 19 bug 4): boots the sandbox's L1, each time
 * running L2 guests with our VMM (the freeze strikes while L2 guests run), and records how each boot ended: finished,
 * frozen (heartbeat stopped), timed out, or failed. Every boot also lands in the L1 boot ledger (ledger.ts), and the
 * summary at the end reads the ledger's study boots by configuration. Run it holding the sandbox lock, one boot per
 * hold so others can take the lock between boots:
 *
 *   flock /tmp/tsvmm-sandbox.lock node dist/hosts/sandbox/freeze-study.js --boots 1 --minutes 5 --l2-seconds 120 \
 *     [--thread single] [--cpu-model EPYC] [--cpus 2] [--append 'kvm_amd.npt=0'] [--load disk|churn|idle]
 *     [--out f.jsonl]
 *
 * --load disk (default): each L2 guest (2 vCPUs, micro host) writes, syncs and reads back a fresh qcow2 disk with dd,
 * as the linux tier's qcow and boot files do where the history saw L1 freeze; --load churn: that and 96 MiB of fresh
 * guest RAM filled and freed each round; --load idle: a little console work.
 * It starts no boot that might not end within --minutes (1.5 x the longest boot so far), prints one line per boot
 * and a summary, and appends one JSON line per boot to --out.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { guestKit, writeInitramfsWithScript } from '../guestkit/kit.js';
import { ledgerBoots, ratesBy } from './freeze-evidence.js';
import { ledgerPath, readLedger } from './ledger.js';
import { projectLayout, runInSandbox } from './sandbox.js';
import { qemuArgv } from './boot.js';

/** What an idle L2 guest does: a little console and process work, a marker, then poweroff (the kit's /init). */
const L2_IDLE =
  'i=0\nwhile [ $i -lt 50 ]; do cat /proc/uptime >/dev/null; i=$((i+1)); done\necho freeze-study-l2-done\n';
/** What a disk-loaded L2 guest does: 3 rounds of 16 MiB written with fsync and read back on its qcow2 disk. */
const L2_DISK = `for r in 1 2 3; do
  dd if=/dev/urandom of=/dev/vda bs=1M count=16 conv=fsync 2>/dev/null || echo freeze-study-l2-io-error
  dd if=/dev/vda of=/dev/null bs=1M count=16 2>/dev/null || echo freeze-study-l2-io-error
done
sync
echo freeze-study-l2-done
`;
/**
 * What a churning L2 guest does (--load churn): the disk load, and between its rounds 96 MiB of fresh guest RAM filled
 * and freed (the L2 faults of the linux tier came where L1's memory churned under the VMM: a balloon inflating, a
 * second boot faulting in fresh RAM), so each L2 run makes L1 map and unmap guest memory under nested paging.
 */
const L2_CHURN = L2_DISK.replace(
  'done\nsync',
  '  dd if=/dev/urandom of=/churn bs=1M count=96 2>/dev/null; rm -f /churn\ndone\nsync',
);
const L2_DONE = /^freeze-study-l2-done\r?$/gm;
const L2_EXIT = /^freeze-study-l2-exit \d+\r?$/gm;
/** The L2 guest's qcow2 disk, made fresh in L1 before each run. */
const L2_DISK_FILE = '/tmp/freeze-study-l2.qcow2';

/** One L1 boot of the study. */
interface StudyBoot {
  boot: number;
  status: string;
  seconds: number;
  l2Done: number;
  /** L2 runs that ended (a run without its done marker: the guest faulted or the VMM failed). */
  l2Runs: number;
  vmm: string;
  exitCode?: number;
  killReason?: string;
  append: string;
  cpus: number;
  thread: string;
  cpuModel: string;
  load: string;
  load1: number;
}

/** The micro host's YAML (hosts/micro.yaml), the L2 guest's base under either VMM. */
interface MicroHost {
  machine: Record<string, unknown>;
  boot: Record<string, unknown>;
  plugins: Record<string, unknown>[];
}

function readMicro(root: string): MicroHost {
  return parse(readFileSync(join(root, 'hosts', 'micro.yaml'), 'utf8')) as MicroHost;
}

/** The L2 VM's YAML: the micro host with 2 vCPUs, quiet, and for the disk load a qcow2 virtio-blk disk. */
function l2Config(host: MicroHost, vmlinux: string, initramfs: string, disk: boolean): string {
  const micro = structuredClone(host);
  micro.machine.vcpus = 2;
  micro.boot.kernel = vmlinux;
  micro.boot.initramfs = initramfs;
  micro.boot.cmdline = `${String(micro.boot.cmdline)} quiet`;
  if (disk)
    micro.plugins.push(
      { name: 'raw-disk' },
      { name: 'qcow' },
      { name: 'virtio-blk', id: 'disk0', config: { path: L2_DISK_FILE, format: 'qcow2' } },
    );
  return stringify(micro);
}

/** The L2 guest under QEMU with KVM in L1: microvm, 2 vCPUs, the micro host's RAM and command line, the qcow2 disk. */
function qemuL2Command(micro: MicroHost, vmlinux: string, initramfs: string, disk: boolean): string {
  const argv = qemuArgv({
    accel: 'kvm',
    timeoutMs: 0, // the L1 command's own limits apply
    kernel: vmlinux,
    initramfs,
    cpus: 2,
    memoryMiB: parseInt(String(micro.machine.memory ?? '256'), 10),
    append: `${String(micro.boot.cmdline)} quiet`,
    extraArgs: disk
      ? ['-drive', `file=${L2_DISK_FILE},format=qcow2,if=none,id=vda`, '-device', 'virtio-blk-device,drive=vda']
      : [],
  });
  return ['qemu-system-x86_64', ...argv].map((a) => `'${a}'`).join(' ');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '9' },
      boots: { type: 'string' },
      l2: { type: 'string', default: '3' },
      cpus: { type: 'string', default: '2' },
      append: { type: 'string', default: '' },
      thread: { type: 'string', default: 'multi' },
      'cpu-model': { type: 'string', default: 'max' },
      load: { type: 'string', default: 'disk' },
      out: { type: 'string' },
      'l2-seconds': { type: 'string' },
      vmm: { type: 'string', default: 'ours' },
    },
  });
  const budgetMs = Number(values.minutes) * 60_000;
  const maxBoots = values.boots ? Number(values.boots) : Infinity;
  const l2 = Number(values.l2);
  const cpus = Number(values.cpus);
  const thread = values.thread === 'single' ? 'single' : 'multi';
  const cpuModel = values['cpu-model'] ?? 'max';
  const disk = values.load !== 'idle';
  const script = values.load === 'churn' ? L2_CHURN : disk ? L2_DISK : L2_IDLE;
  if (values.append) process.env.TSVMM_SANDBOX_APPEND = values.append;
  const { root, compiled } = projectLayout();
  const kit = await guestKit();
  const dir = mkdtempSync(join(tmpdir(), 'freeze-study-'));
  const initramfs = writeInitramfsWithScript(kit, script, join(dir, 'l2.initramfs'));
  const cfg = join(dir, 'l2.yaml');
  const micro = readMicro(root);
  writeFileSync(cfg, l2Config(micro, kit.vmlinux, initramfs, disk));
  const vmm = resolve(root, 'bin', 'vmm.js');
  // --l2-seconds: L2 runs one after another until that long after L1's command started (more exposure per L1 boot)
  const l2Seconds = Number(values['l2-seconds'] ?? 0);
  const fresh = disk ? `qemu-img create -q -f qcow2 ${L2_DISK_FILE} 64M || exit 125; ` : '';
  // --vmm qemu: the same L2 guest under L1's QEMU with KVM (microvm, virtio-blk-device): the L2 fault rate of the
  // peer VMM over the same kind of boots tells a fault of ours from one of the nested emulation
  const peer = values.vmm === 'qemu';
  if (!peer && values.vmm !== 'ours') throw new Error(`--vmm is ours or qemu, not '${values.vmm}'`);
  const l2Vmm = peer ? qemuL2Command(micro, kit.vmlinux, initramfs, disk) : `node '${vmm}' run '${cfg}'`;
  // every L2 run ends with its exit line, so a run whose guest faulted (ours: exit 3; QEMU: -no-reboot exits 0 on the
  // reset) counts as a run without its done marker, and the next run goes on
  const run = `${fresh}${l2Vmm}; echo "freeze-study-l2-exit $?"`;
  const command = l2Seconds
    ? `end=$(( $(date +%s) + ${l2Seconds} )); while [ $(date +%s) -lt $end ]; do ${run}; done`
    : `for i in $(seq ${l2}); do ${run}; done`;
  const t0 = Date.now();
  let longest = 3 * 60_000;
  const boots: StudyBoot[] = [];
  try {
    while (boots.length < maxBoots && Date.now() - t0 + 1.5 * longest < budgetMs) {
      const r = await runInSandbox(command, {
        files: [cfg, initramfs],
        env: { VMM_DIST: relative(root, compiled) || 'dist' }, // this build, also when it is not dist/
        heartbeat: { firstBeatMs: 4 * 60_000, gapMs: 90_000 },
        timeoutMs: Math.max(60_000, budgetMs - (Date.now() - t0)),
        cpus,
        tcgThread: thread,
        cpuModel,
        ledger: {
          source: 'study',
          running: (c) => `L2 run ${(c.match(L2_DONE) ?? []).length + 1} (${values.load} load)`,
        },
      });
      longest = boots.length ? Math.max(longest, r.durationMs) : r.durationMs;
      const b: StudyBoot = {
        boot: boots.length + 1,
        status: r.status,
        seconds: Math.round(r.durationMs / 1000),
        l2Done: (r.console.match(L2_DONE) ?? []).length,
        l2Runs: (r.console.match(L2_EXIT) ?? []).length,
        vmm: peer ? 'qemu' : 'ours',
        exitCode: r.exitCode,
        killReason: r.killReason,
        append: values.append ?? '',
        cpus,
        thread,
        cpuModel,
        load: values.load ?? 'disk',
        load1: Math.round(loadavg()[0]! * 100) / 100,
      };
      boots.push(b);
      console.log(JSON.stringify(b));
      if (values.out) appendFileSync(values.out, `${JSON.stringify(b)}\n`);
      if (r.status !== 'exited' || r.exitCode !== 0) console.log(r.report.split('\n').slice(0, 20).join('\n'));
      else if (b.l2Done === 0) console.log(`no L2 run finished; L1's console ends:\n${r.console.slice(-2000)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const by = (s: string) => boots.filter((b) => b.status === s).length;
  console.log(
    `this run: ${boots.length} L1 boots (${thread}, -cpu ${cpuModel}, append '${values.append}', ${cpus} vCPUs), ` +
      `${by('frozen')} frozen, ${by('timeout')} timed out, ` +
      `${boots.filter((b) => b.status === 'exited' && b.exitCode === 0).length} finished, ` +
      `${boots.reduce((n, b) => n + b.l2Done, 0)} of ${boots.reduce((n, b) => n + b.l2Runs, 0)} L2 runs done ` +
      `(${peer ? 'QEMU' : 'our VMM'}), ${((Date.now() - t0) / 60_000).toFixed(1)} min`,
  );
  const lp = ledgerPath();
  const study = ledgerBoots(
    readLedger(lp).records.filter((r) => r.source === 'study'),
    lp ?? '',
  );
  console.log(`the ledger's study boots so far (${lp}), by L1 configuration:`);
  for (const g of ratesBy(study, (b) => b.label))
    console.log(
      `  ${g.key}: ${g.rate.boots} boots, ${g.rate.freezes} froze (95 %: ${(g.rate.perBootInterval[0] * 100).toFixed(1)}` +
        `–${(g.rate.perBootInterval[1] * 100).toFixed(1)} % a boot), ${g.rate.hours} L1-h`,
    );
}

await main();
