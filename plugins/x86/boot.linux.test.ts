/**
 * Boots the guest kit's Debian kernel on the x86 machine (micro assembly: kvm, x86,
 * serial, i8042, plus rtc / boot-timer when present) and checks how the VM ends. Two
 * boots, as every boot costs 30-60 s inside the nested sandbox:
 *  A. bzImage, 2 vCPUs, console on a unix socket: both CPUs online, the IOAPIC in use, a line typed
 *     into the socket reaches the guest and its answer, /proc/interrupts and 40 lines (2.8 KB) printed
 *     right before the script ends all come back (nothing lost when the session on the console ends:
 *     the kit's /init drains the tty first), `poweroff -f` (ACPI S5 through the PM1 registers) ends
 *     the VM with 'poweroff', exit code 0.
 *  B. ELF vmlinux through PVH, 1 vCPU, console on a unix socket: the guest's timer is the LAPIC in TSC-deadline
 *     mode with high-resolution timers (CPUID offers it: plugins/kvm/x86/apic-cpuid.ts), a line typed into the
 *     socket reaches the guest, `reboot -f` (i8042 reset, reboot=k) ends the VM with
 *     'reset', exit code 0.
 * Needs a KVM that boots Linux (the nested sandbox; hosts/sandbox detectHost) and the
 * guest kit; skipped otherwise. Prints the boot-marker time and the vCPU exit statistics.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../core/logger.js';
import type { Machine } from '../../core/machine.js';
import { runVm, type RunResult } from '../../core/vmm/run.js';
import {
  guestKit,
  parseGuestOutput,
  writeInitramfsWithScript,
  type GuestKit,
  detectHost,
} from '../../test/harness/guest-kit.js';

const MICRO_CMDLINE =
  'console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd quiet';
const BOOT_DEADLINE_MS = 300_000;

/** A Logger that keeps the records worth reporting (boot time, exit statistics, stop reasons). */
function recordingLogger(records: Record<string, unknown>[], bindings: Record<string, unknown> = {}): Logger {
  const keep =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      const rec = typeof obj === 'string' ? { msg: obj } : { ...obj, msg };
      const kept = /boot completed|exit statistics|machine stopped|poweroff|kernel loaded|serial: stopped|vCPU states/;
      if (level === 'error' || level === 'warn' || kept.test(String(rec.msg))) {
        records.push({ level, ...bindings, ...rec });
      }
    };
  return {
    trace: () => {},
    debug: () => {},
    info: keep('info'),
    warn: keep('warn'),
    error: keep('error'),
    child: (b) => recordingLogger(records, { ...bindings, ...b }),
  };
}

const show = (label: string, records: Record<string, unknown>[]): void => {
  for (const r of records)
    console.log(
      `      [${label}] ${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`,
    );
};

function optionalPlugins(): { name: string }[] {
  return ['rtc', 'boot-timer']
    .filter((n) => existsSync(join(process.cwd(), 'plugins', n, 'vmm-plugin.json')))
    .map((name) => ({ name }));
}

describe('x86 machine boots Linux (guest kit)', function () {
  this.timeout(BOOT_DEADLINE_MS + 60_000);
  let kit: GuestKit;
  let dir: string;

  before(async function () {
    if (!detectHost().canBootLinux) this.skip();
    try {
      kit = await guestKit({ log: () => {} });
    } catch {
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'x86-linux-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function boot(o: {
    kernel: 'vmlinux' | 'bzImage';
    vcpus: number;
    script: string;
    extraCmdline: string;
    records: Record<string, unknown>[];
    console: { kind: 'file'; path: string } | { kind: 'unix-socket'; path: string };
    onStarted?: () => void;
  }): Promise<RunResult> {
    const initramfs = writeInitramfsWithScript(kit, o.script, join(dir, `initrd-${o.kernel}-${o.vcpus}.gz`));
    let machine: Machine | undefined;
    const deadline = setTimeout(() => {
      void machine?.stop({ kind: 'api' });
    }, BOOT_DEADLINE_MS);
    try {
      return await runVm(
        {
          baseDir: dir,
          config: {
            machine: { vcpus: o.vcpus, memory: '256M' },
            boot: {
              kernel: o.kernel === 'vmlinux' ? kit.vmlinux : kit.bzImage,
              initramfs,
              cmdline: `${MICRO_CMDLINE} ${o.extraCmdline}`,
            },
            plugins: [
              { name: 'kvm' },
              { name: 'acpi' },
              { name: 'x86' },
              { name: 'serial', config: { console: o.console } },
              { name: 'i8042' },
              ...optionalPlugins(),
            ],
          },
        },
        {
          signals: [],
          logger: recordingLogger(o.records),
          onStarted: (vm) => {
            machine = vm.machine;
            o.onStarted?.();
          },
        },
      );
    } finally {
      clearTimeout(deadline);
    }
  }

  /** Boots with the console on a unix socket; types `input` once the guest prints ready-for-input; reads to the end. */
  async function bootOverSocket(o: {
    kernel: 'vmlinux' | 'bzImage';
    vcpus: number;
    script: string;
    extraCmdline: string;
    label: string;
    input?: string;
  }) {
    const sock = join(dir, `console-${o.label.replace('/', '-')}.sock`);
    const records: Record<string, unknown>[] = [];
    let seen = '';
    let client: net.Socket | undefined;
    const r = await boot({
      kernel: o.kernel,
      vcpus: o.vcpus,
      script: o.script,
      extraCmdline: o.extraCmdline,
      records,
      console: { kind: 'unix-socket', path: sock },
      onStarted: () => {
        client = net.connect(sock);
        let typed = o.input === undefined;
        client.on('data', (d) => {
          seen += d.toString('latin1');
          if (!typed && seen.includes('ready-for-input\r\n')) {
            typed = true;
            client!.write(o.input!);
          }
        });
        client.on('error', () => {});
      },
    });
    // The console ends the connection when the VM stops, after its last bytes: read to that end
    // (destroying the socket at once would discard what the kernel still holds for us).
    if (client && !client.destroyed) {
      await new Promise<void>((res) => {
        const t = setTimeout(res, 15_000);
        client!.once('close', () => {
          clearTimeout(t);
          res();
        });
      });
      client.destroy();
    }
    show(o.label, records);
    const out = parseGuestOutput(seen);
    console.log(`      [${o.label}] result:\n${out.result ?? seen.slice(-2000)}`);
    expect(out.initReached, `init marker; console:\n${seen.slice(-3000)}`).to.equal(true);
    return { r, out };
  }

  /** Lines the 2-vCPU script prints last, right before its session on the console ends. */
  const TAIL_LINES = 40;
  it("bzImage, 2 vCPUs: CPUs, IOAPIC, console input and the script's last output (unix socket), poweroff", async () => {
    const script = [
      'echo "nproc=$(nproc) cpuinfo=$(grep -c ^processor /proc/cpuinfo)"',
      'echo "ioapic=$(grep -c IO-APIC /proc/interrupts)"',
      'echo "ready-for-input"',
      'read -t 60 -r line',
      'echo "input=$line"',
      'cat /proc/interrupts',
      `i=0; while [ $i -lt ${TAIL_LINES} ]; do echo "tail-$i ${'-'.repeat(60)}"; i=$((i+1)); done`,
    ].join('\n');
    const { r, out } = await bootOverSocket({
      kernel: 'bzImage',
      vcpus: 2,
      script,
      extraCmdline: 'tsvmm.stdin=console',
      label: 'bzImage/2',
      input: 'tsvmm-typed-2cpu\n',
    });
    expect(out.result).to.match(/nproc=2 cpuinfo=2/);
    expect(Number(/ioapic=(\d+)/.exec(out.result ?? '')?.[1] ?? 0)).to.be.greaterThan(
      0,
      'interrupts routed through the IOAPIC',
    );
    expect(out.result).to.match(/input=tsvmm-typed-2cpu/);
    const tail = (out.result ?? '').split(/\r?\n/).filter((l) => /^tail-\d+ -+$/.test(l));
    expect(tail.length, 'every line printed right before the session ended').to.equal(TAIL_LINES);
    expect(out.exitCode).to.equal(0);
    expect(r.reason).to.deep.equal({ kind: 'poweroff' });
    expect(r.exitCode).to.equal(0);
  });

  it("vmlinux (PVH), 1 vCPU: console input over a unix socket, reboot -f ends with 'reset'", async () => {
    const script = [
      'echo "nproc=$(nproc)"',
      // the timer Linux runs on: the in-kernel LAPIC's TSC-deadline mode, one-shot, high resolution
      'echo "tsc-deadline=$(grep -c -w tsc_deadline_timer /proc/cpuinfo)"',
      'echo "clockevent=$(cat /sys/devices/system/clockevents/clockevent0/current_device)"',
      'echo "hres=$(grep -m1 -o "resolution: [0-9]* nsecs" /proc/timer_list)"',
      'echo "ready-for-input"',
      'read -t 60 -r line',
      'echo "input=$line"',
    ].join('\n');
    const { r, out } = await bootOverSocket({
      kernel: 'vmlinux',
      vcpus: 1,
      script,
      extraCmdline: 'tsvmm.stdin=console tsvmm.exit=reboot',
      label: 'vmlinux/1',
      input: 'tsvmm-typed-42\n',
    });
    expect(out.result).to.match(/nproc=1/);
    expect(out.result, 'CPUID.1:ECX[24] offered').to.match(/tsc-deadline=1/);
    expect(out.result, 'per-CPU timer: the LAPIC in TSC-deadline mode').to.match(/clockevent=lapic-deadline/);
    expect(out.result, 'high-resolution timers on').to.match(/hres=resolution: 1 nsecs/);
    expect(out.result).to.match(/input=tsvmm-typed-42/);
    expect(out.exitCode).to.equal(0);
    expect(r.reason).to.deep.equal({ kind: 'reset' });
    expect(r.exitCode).to.equal(0);
  });
});
