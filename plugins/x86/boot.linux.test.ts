/**
 * Boots the guest kit's Debian kernel on the x86 machine (micro assembly: kvm, x86,
 * serial, i8042, plus rtc / boot-timer when present) through bzImage and PVH, with 1
 * and 2 vCPUs, and checks how the VM ends. Needs /dev/kvm with a hardware-style KVM
 * (the nested sandbox) and the guest kit; skipped otherwise.
 *
 * Expected endings (core/vmm/exit-codes.ts):
 *   guest `reboot -f`   -> i8042 reset (reboot=k) -> StopReason 'reset'    -> exit code 0
 *   guest `poweroff -f` -> all vCPUs halted, IF=0 -> StopReason 'poweroff' -> exit code 0
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Machine } from '../../core/machine.js';
import { runVm, type RunResult } from '../../core/vmm/run.js';
import { guestKit, parseGuestOutput, writeInitramfsWithScript, type GuestKit } from '../../hosts/guestkit/index.js';

const MICRO_CMDLINE = 'console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd';
const BOOT_DEADLINE_MS = 240_000;

interface BootOptions {
  kernel: 'vmlinux' | 'bzImage';
  vcpus: number;
  script?: string;
  exit?: 'reboot' | 'poweroff';
  console: { kind: 'file'; path: string } | { kind: 'unix-socket'; path: string };
  onStarted?: () => void;
}

function optionalPlugins(): { name: string }[] {
  return ['rtc', 'boot-timer'].filter((n) => existsSync(join(process.cwd(), 'plugins', n, 'vmm-plugin.json'))).map((name) => ({ name }));
}

describe('x86 machine boots Linux (guest kit)', function () {
  this.timeout(BOOT_DEADLINE_MS + 60_000);
  let kit: GuestKit;
  let dir: string;

  before(async function () {
    if (!existsSync('/dev/kvm')) this.skip();
    try { kit = await guestKit({ log: () => {} }); } catch { this.skip(); }
    dir = mkdtempSync(join(tmpdir(), 'x86-linux-'));
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  async function boot(o: BootOptions): Promise<RunResult> {
    const initramfs = o.script !== undefined ? writeInitramfsWithScript(kit, o.script, join(dir, `initrd-${Date.now()}.gz`)) : kit.initramfs;
    let machine: Machine | undefined;
    const deadline = setTimeout(() => { void machine?.stop({ kind: 'api' }); }, BOOT_DEADLINE_MS);
    try {
      return await runVm({
        baseDir: dir,
        config: {
          machine: { vcpus: o.vcpus, memory: '256M' },
          boot: {
            kernel: o.kernel === 'vmlinux' ? kit.vmlinux : kit.bzImage,
            initramfs,
            cmdline: `${MICRO_CMDLINE}${o.exit === 'reboot' ? ' tsvmm.exit=reboot' : ''}`,
          },
          plugins: [{ name: 'kvm' }, { name: 'x86' }, { name: 'serial', config: { console: o.console } }, { name: 'i8042' }, ...optionalPlugins()],
        },
      }, { signals: [], onStarted: (vm) => { machine = vm.machine; o.onStarted?.(); } });
    } finally {
      clearTimeout(deadline);
    }
  }

  for (const kernel of ['vmlinux', 'bzImage'] as const) {
    for (const vcpus of [1, 2]) {
      it(`${kernel}, ${vcpus} vCPU(s): reaches the initramfs, sees ${vcpus} CPU(s), reboot -f ends with 'reset'`, async () => {
        const log = join(dir, `console-${kernel}-${vcpus}.log`);
        const r = await boot({ kernel, vcpus, exit: 'reboot', console: { kind: 'file', path: log }, script: 'nproc; grep -c ^processor /proc/cpuinfo' });
        const out = parseGuestOutput(readFileSync(log, 'utf8'));
        expect(out.initReached, 'init marker').to.equal(true);
        expect(out.result?.trim().split(/\s+/)).to.deep.equal([String(vcpus), String(vcpus)]);
        expect(out.exitCode).to.equal(0);
        expect(r.reason).to.deep.equal({ kind: 'reset' });
        expect(r.exitCode).to.equal(0);
      });
    }
  }

  it("poweroff -f ends with 'poweroff' (no ACPI: every vCPU halted with interrupts off)", async () => {
    const log = join(dir, 'console-poweroff.log');
    const r = await boot({ kernel: 'vmlinux', vcpus: 2, exit: 'poweroff', console: { kind: 'file', path: log }, script: 'true' });
    expect(parseGuestOutput(readFileSync(log, 'utf8')).exitCode).to.equal(0);
    expect(r.reason).to.deep.equal({ kind: 'poweroff' });
    expect(r.exitCode).to.equal(0);
  });

  it('console input reaches the shell', async () => {
    const sock = join(dir, 'console.sock');
    let seen = '';
    let client: net.Socket | undefined;
    const r = await boot({
      kernel: 'vmlinux', vcpus: 1, console: { kind: 'unix-socket', path: sock },
      onStarted: () => {
        client = net.connect(sock);
        let asked = false, rebooting = false;
        client.on('data', (d) => {
          seen += d.toString('latin1');
          if (!asked && seen.includes('shell on the console')) { asked = true; setTimeout(() => client!.write('echo tsvmm-$((6*7))\n'), 500); }
          if (!rebooting && seen.includes('tsvmm-42')) { rebooting = true; client!.write('reboot -f\n'); }
        });
        client.on('error', () => {});
      },
    });
    client?.destroy();
    expect(seen).to.include('tsvmm-42');
    expect(r.reason).to.deep.equal({ kind: 'reset' });
  });
});
