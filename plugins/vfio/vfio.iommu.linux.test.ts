/**
 * Linux tier, in the sandbox's IOMMU + NVMe variant (hosts/sandbox/vfio-variant.ts; the runner runs
 * `*.iommu.linux.test.js` there): L1 is q35 with an emulated Intel IOMMU and an NVMe controller bound to
 * vfio-pci, its namespace a host file of known content. ONE boot of a cloud-like host (ACPI, PCI, hotplug, 1 vCPU)
 * to which the vfio plugin hot-adds the controller once the guest runs (only devices added at runtime can be
 * removed; the cold-plugged path is the bench's, test/bench/vfio.ts):
 *  - the guest lists it with its real ids (1b36:0010, class 010802) and its own nvme driver binds it;
 *  - the namespace's known bytes hash in the guest to the host's sha256; the guest writes a pattern (the
 *    runner then finds it in the host's backing file) and reads it back;
 *  - /proc/interrupts: the controller's MSI-X vectors (nvme0q*) count up under that I/O;
 *  - hot-unplug while idle (ACPI eject): the controller goes, the guest runs on; hot-add again (the VFIO group
 *    is free once the first instance is gone): it comes back and reads the same bytes.
 * Every wait is bounded; a failure prints the console tail and L1's view of the device.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runVm, type RunResult } from '../../core/vmm/run.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { writeInitramfsWithScript } from '../../test/harness/guest-kit.js';
import { guestScope, repoRoot } from '../../test/guest/guest-vm.js';
import { knownBytes, PROOF_KNOWN, PROOF_PATTERN, PROOF_PATTERN_AT, vfioBoundFunctions } from './proof.js';

const STEP_MS = 120_000;
const BOOT_LIMIT_MS = 420_000;
const KEEP = new Set(['kvm', 'acpi', 'x86', 'pci', 'pci-hotplug', 'serial', 'i8042', 'rtc']);

/** L1's view for a failure message: PCI devices with drivers, /dev/vfio, the kernel's last lines. */
function l1Evidence(): string {
  const run = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
    } catch (e) {
      return `(${cmd} failed: ${(e as Error).message})`;
    }
  };
  const devs = fs.existsSync('/sys/bus/pci/devices')
    ? fs
        .readdirSync('/sys/bus/pci/devices')
        .map((d) => {
          const p = `/sys/bus/pci/devices/${d}`;
          const drv = fs.existsSync(`${p}/driver`) ? path.basename(fs.readlinkSync(`${p}/driver`)) : '-';
          return `${d} ${fs.readFileSync(`${p}/vendor`, 'utf8').trim()}:${fs.readFileSync(`${p}/device`, 'utf8').trim()} ${drv}`;
        })
        .join('\n')
    : '(no /sys/bus/pci)';
  return `L1 PCI:\n${devs}\n/dev/vfio: ${fs.existsSync('/dev/vfio') ? fs.readdirSync('/dev/vfio').join(' ') : '-'}\n${run('dmesg', []).split('\n').slice(-40).join('\n')}`;
}

const SCRIPT = `
step() { echo "STEP $1"; read -r ack; echo "ack-$1=$ack"; }
waitfor() { i=0; while ! eval "$1" && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; eval "$1"; }
nvme_dev() { for d in /sys/bus/pci/devices/*; do [ "$(cat $d/class)" = 0x010802 ] && echo \${d##*/}; done; }
nvme_blk() { ls /sys/block | grep nvme | head -n1; }
echo "nvme-at-boot=$(nvme_dev)"
step add-nvme
waitfor '[ -n "$(nvme_dev)" ] && [ -n "$(nvme_blk)" ]' && echo nvme=present
for d in /sys/bus/pci/devices/*; do
  echo "PCI \${d##*/} [$(sed s/0x// $d/vendor):$(sed s/0x// $d/device)] class=$(cat $d/class) driver=$(basename "$(readlink $d/driver)")"
done
dev=$(nvme_dev)
b=$(nvme_blk)
echo "nvme-pci=$dev"
[ -d /sys/bus/pci/devices/$dev/msi_irqs ] && echo "msimode=$(cat /sys/bus/pci/devices/$dev/msi_irqs/* | sort -u | tr '\\n' ' ')"
grep nvme /proc/interrupts | sed "s/^/IRQ-before /"
echo "nvme-sha=$(dd if=/dev/$b bs=1M count=${PROOF_KNOWN >> 20} iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
printf '${PROOF_PATTERN}' > /tmp/pat
dd if=/tmp/pat of=/tmp/blk bs=512 count=1 conv=sync 2>/dev/null
dd if=/tmp/blk of=/dev/$b bs=512 seek=${PROOF_PATTERN_AT / 512} oflag=direct conv=fsync,notrunc 2>/dev/null && echo nvme-write=ok
echo "nvme-readback=$(dd if=/dev/$b bs=512 skip=${PROOF_PATTERN_AT / 512} count=1 iflag=direct 2>/dev/null | head -c ${PROOF_PATTERN.length})"
grep nvme /proc/interrupts | sed "s/^/IRQ-after /"
step remove-nvme
waitfor '[ -z "$(nvme_dev)" ]' && echo nvme=gone
echo "still-running=$(cut -d' ' -f1 /proc/uptime)"
step add-again
waitfor '[ -n "$(nvme_dev)" ] && [ -n "$(nvme_blk)" ]' && echo nvme-again=present
echo "nvme-again-sha=$(dd if=/dev/$(nvme_blk) bs=1M count=${PROOF_KNOWN >> 20} iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo vfio-script-done
`;

/** Sum over CPUs of each nvme line of /proc/interrupts (name = last column). */
function counts(lines: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    const n = f.slice(1).filter((x) => /^\d+$/.test(x));
    m.set(
      f[f.length - 1],
      n.reduce((s, x) => s + Number(x), 0),
    );
  }
  return m;
}

describe('vfio: an NVMe controller passed through to a Linux guest (linux tier, IOMMU sandbox)', function () {
  this.timeout(BOOT_LIMIT_MS + 60_000);
  const g = guestScope('vfio-linux');

  it('is seen with its ids, reads known data, writes a pattern, counts MSI-X, hot-unplugs and comes back', async () => {
    const fns = vfioBoundFunctions();
    expect(fns, `no function bound to vfio-pci in L1 (is this the IOMMU variant?)\n${l1Evidence()}`).to.have.length(1);
    expect(fns[0].ids, l1Evidence()).to.equal('1b36:0010');
    const address = fns[0].address;
    const { kit, dir } = g;

    const cfg = parseYaml(fs.readFileSync(path.join(repoRoot(), 'hosts', 'cloud.yaml'), 'utf8')) as {
      machine: Record<string, unknown>;
      boot: Record<string, unknown>;
      plugins: { name: string; id?: string; config?: Record<string, unknown> }[];
    };
    const sock = path.join(dir, 'console.sock');
    cfg.machine.memory = '256M';
    cfg.machine.vcpus = 1;
    cfg.boot.kernel = kit.vmlinux;
    cfg.boot.initramfs = writeInitramfsWithScript(kit, SCRIPT, path.join(dir, 'vfio.initramfs'));
    cfg.boot.cmdline = `${String(cfg.boot.cmdline)} quiet tsvmm.stdin=console`;
    cfg.plugins = cfg.plugins.filter((p) => KEEP.has(p.name));
    for (const p of cfg.plugins)
      if (p.name === 'serial') p.config = { port: 'COM1', console: { kind: 'unix-socket', path: sock } };

    let seen = '';
    let vm: AssembledVm | undefined;
    let client: net.Socket | undefined;
    const done = new Set<string>();
    const actions: Record<string, (v: AssembledVm) => Promise<unknown>> = {
      'add-nvme': (v) => v.addDevice({ name: 'vfio', id: 'nvme0', config: { device: address, slot: 4 } }),
      'remove-nvme': (v) => v.removeDevice('nvme0', { timeoutMs: STEP_MS }),
      'add-again': (v) => v.addDevice({ name: 'vfio', id: 'nvme1', config: { device: address, slot: 5 } }),
    };
    const react = (): void => {
      // whole lines only: a console chunk can end inside "STEP remove-nvme" (`$` would match "STEP remove-n")
      for (const m of seen.matchAll(/^STEP (\S+)\r?\n/gm)) {
        if (done.has(m[1])) continue;
        done.add(m[1]);
        const act = actions[m[1]];
        void (act ? act(vm!) : Promise.resolve()).then(
          () => client!.write('ok\n'),
          (err: Error) => client!.write(`failed ${err.message.replace(/\s+/g, ' ').slice(0, 200)}\n`),
        );
      }
    };
    const t0 = Date.now();
    let killer: NodeJS.Timeout | undefined;
    const r: RunResult = await runVm(
      { config: cfg, baseDir: dir },
      {
        onStarted: (v) => {
          vm = v;
          // a bounded boot: past the limit the machine is stopped and the test fails with the evidence below
          killer = setTimeout(
            () =>
              void v.machine?.stop({ kind: 'error', error: new Error('vfio linux test: time limit') }).catch(() => {}),
            BOOT_LIMIT_MS,
          );
          client = net.connect(sock);
          client.on('data', (d: Buffer) => {
            seen += d.toString('latin1');
            react();
          });
          client.on('error', () => {});
        },
      },
    );
    clearTimeout(killer);
    client?.destroy();
    const seconds = (Date.now() - t0) / 1000;
    const tail = `reason ${JSON.stringify(r.reason)}; console tail:\n${seen.slice(-5000)}\n${l1Evidence()}`;
    console.log(`      one boot with the NVMe passed through, to poweroff: ${seconds.toFixed(1)} s`);
    const lines = seen.split('\n').map((l) => l.replace(/\r$/, ''));
    const kv = new Map<string, string>();
    for (const l of lines) {
      const i = l.indexOf('=');
      if (i > 0 && /^[a-z][a-z0-9:.-]*$/.test(l.slice(0, i))) kv.set(l.slice(0, i), l.slice(i + 1));
    }
    for (const l of lines.filter((x) => /^(PCI |IRQ-|msimode)/.test(x))) console.log(`      ${l}`);

    expect(kv.get('nvme-at-boot'), tail).to.equal('');
    expect(kv.get('ack-add-nvme'), tail).to.equal('ok');
    expect(
      lines.some((l) => /^PCI 0000:00:04\.0 \[1b36:0010\] class=0x010802 driver=nvme$/.test(l)),
      tail,
    ).to.equal(true);
    expect(kv.get('nvme'), tail).to.equal('gone');
    expect(lines, tail).to.include('nvme=present');
    expect(kv.get('msimode')?.trim(), tail).to.equal('msix');
    expect(kv.get('nvme-sha'), tail).to.equal(createHash('sha256').update(knownBytes()).digest('hex'));
    expect(kv.get('nvme-write'), tail).to.equal('ok');
    expect(kv.get('nvme-readback'), tail).to.equal(PROOF_PATTERN);
    const before = counts(lines.filter((l) => l.startsWith('IRQ-before ')).map((l) => l.slice(11)));
    const after = counts(lines.filter((l) => l.startsWith('IRQ-after ')).map((l) => l.slice(10)));
    const grew = [...after].filter(([name, n]) => /^nvme0q[1-9]/.test(name) && n > (before.get(name) ?? 0));
    expect(
      grew.length,
      `nvme I/O queue vectors that counted up: ${JSON.stringify([...after])}\n${tail}`,
    ).to.be.greaterThan(0);
    expect(kv.get('ack-remove-nvme'), tail).to.equal('ok');
    expect(Number(kv.get('still-running')), tail).to.be.greaterThan(0);
    expect(kv.get('ack-add-again'), tail).to.equal('ok');
    expect(kv.get('nvme-again'), tail).to.equal('present');
    expect(kv.get('nvme-again-sha'), tail).to.equal(kv.get('nvme-sha'));
    expect(lines, tail).to.include('vfio-script-done');
  });
});
