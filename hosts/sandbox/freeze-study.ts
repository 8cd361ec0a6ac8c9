/**
 * The L1 freeze study (hosts/sandbox/README.md "Known problem"): boots the sandbox's L1 again and again, each time
 * running a few tiny L2 guests with our VMM (the freeze strikes while L2 guests run), and counts how each boot
 * ended: finished, frozen (heartbeat stopped), timed out, or failed. Run it alone, holding the sandbox lock:
 *
 *   flock /tmp/tsvmm-sandbox.lock node dist/hosts/sandbox/freeze-study.js --minutes 9 [--l2 3 | --l2-seconds 300] \
 *     [--cpus 2] [--append 'kvm_amd.npt=0'] [--out study.jsonl]
 *
 * It starts no boot that might not end within --minutes (1.5 x the longest boot so far), prints one line per boot
 * and a summary, and appends one JSON line per boot to --out.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { guestKit, writeInitramfsWithScript } from '../guestkit/kit.js';
import { projectLayout, runInSandbox } from './sandbox.js';

/** What the L2 guest does: a little console and process work, a marker, then poweroff (the kit's /init). */
const L2_SCRIPT =
  'i=0\nwhile [ $i -lt 50 ]; do cat /proc/uptime >/dev/null; i=$((i+1)); done\necho freeze-study-l2-done\n';
const L2_DONE = /^freeze-study-l2-done\r?$/gm;

/** One L1 boot of the study. */
interface StudyBoot {
  boot: number;
  status: string;
  seconds: number;
  l2Done: number;
  exitCode?: number;
  killReason?: string;
  append: string;
  cpus: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '9' },
      l2: { type: 'string', default: '3' },
      cpus: { type: 'string', default: '2' },
      append: { type: 'string', default: '' },
      out: { type: 'string' },
      'l2-seconds': { type: 'string' },
    },
  });
  const budgetMs = Number(values.minutes) * 60_000;
  const l2 = Number(values.l2);
  const cpus = Number(values.cpus);
  if (values.append) process.env.TSVMM_SANDBOX_APPEND = values.append;
  const { root } = projectLayout();
  const kit = await guestKit();
  const dir = mkdtempSync(join(tmpdir(), 'freeze-study-'));
  const micro = parse(readFileSync(join(root, 'hosts', 'micro.yaml'), 'utf8')) as {
    machine: Record<string, unknown>;
    boot: Record<string, unknown>;
  };
  micro.machine.vcpus = 2;
  micro.boot.kernel = kit.vmlinux;
  micro.boot.initramfs = writeInitramfsWithScript(kit, L2_SCRIPT, join(dir, 'l2.initramfs'));
  micro.boot.cmdline = `${String(micro.boot.cmdline)} quiet`;
  const cfg = join(dir, 'l2.yaml');
  writeFileSync(cfg, stringify(micro));
  const vmm = resolve(root, 'bin', 'vmm.js');
  // --l2-seconds: L2 runs one after another until that long after L1's command started (more exposure per L1 boot)
  const l2Seconds = Number(values['l2-seconds'] ?? 0);
  const run = `node '${vmm}' run '${cfg}' || exit $?`;
  const command = l2Seconds
    ? `end=$(( $(date +%s) + ${l2Seconds} )); while [ $(date +%s) -lt $end ]; do ${run}; done`
    : `for i in $(seq ${l2}); do ${run}; done`;
  const t0 = Date.now();
  let longest = 3 * 60_000;
  const boots: StudyBoot[] = [];
  try {
    while (Date.now() - t0 + 1.5 * longest < budgetMs) {
      const r = await runInSandbox(command, {
        files: [cfg, micro.boot.initramfs as string],
        heartbeat: { firstBeatMs: 4 * 60_000, gapMs: 90_000 },
        timeoutMs: Math.max(60_000, budgetMs - (Date.now() - t0)),
        cpus,
      });
      longest = boots.length ? Math.max(longest, r.durationMs) : r.durationMs;
      const b: StudyBoot = {
        boot: boots.length + 1,
        status: r.status,
        seconds: Math.round(r.durationMs / 1000),
        l2Done: (r.console.match(L2_DONE) ?? []).length,
        exitCode: r.exitCode,
        killReason: r.killReason,
        append: values.append ?? '',
        cpus,
      };
      boots.push(b);
      console.log(JSON.stringify(b));
      if (values.out) appendFileSync(values.out, `${JSON.stringify(b)}\n`);
      if (r.status !== 'exited' || r.exitCode !== 0) console.log(r.report.split('\n').slice(0, 20).join('\n'));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const by = (s: string) => boots.filter((b) => b.status === s).length;
  console.log(
    `summary: ${boots.length} L1 boots (append '${values.append}', ${cpus} vCPUs), ${by('frozen')} frozen, ` +
      `${by('timeout')} timed out, ${boots.filter((b) => b.status === 'exited' && b.exitCode === 0).length} ` +
      `finished, ${boots.reduce((n, b) => n + b.l2Done, 0)} L2 runs done, ` +
      `${((Date.now() - t0) / 60_000).toFixed(1)} min`,
  );
}

await main();
