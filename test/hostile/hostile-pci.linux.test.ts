/**
 * Linux tier, one boot of bin/vmm.js with the cloud host's plugins (hosts/cloud.yaml: PCI, virtio-pci with MSI-X,
 * ACPI, PCI hotplug, 2 vCPUs) and the hostile-guest program for PCI (hosts/guestkit/tools/hostile-pci.c):
 *  - a virtio-pci disk ("victim") is unbound from virtio-pci and attacked through ECAM (/dev/mem at the MCFG's base,
 *    iomem=relaxed), ports 0xCF8/0xCFC, its BAR (common configuration, notify, ISR, device configuration, MSI-X
 *    table and PBA) and the hotplug controller's registers; every outcome must be what pci-attacks.ts says (the
 *    unit test replays the same attacks register by register);
 *  - the other devices keep working: a second disk ("witness") reads the same bytes afterwards and a write to it
 *    reaches its file; the console answers typed input before and after;
 *  - the VMM's resident memory (VmRSS) stays bounded (both figures printed) and its log stays short.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { guestTool, writeInitramfsWithScript } from '../harness/guest-kit.js';
import { guestResult, guestScope, repoRoot } from '../guest/guest-vm.js';
import { PCI_ATTACKS, PCI_LOG_BOUND } from './pci-attacks.js';
import { WITNESS_AT, expectWitnessIntact, hostileDisks, runWatchedVmm } from './watched-vmm.js';

/** Growth of the VMM's VmRSS over all attacks that the test accepts. */
const RSS_BOUND_KB = 64 * 1024;
/** The VMM is killed (with evidence) after this; the runner's watchdog is 900 s. */
const DEADLINE_MS = 420_000;

const script = `
for b in /sys/block/vd*; do
  n=\${b##*/}; s=$(cat $b/serial 2>/dev/null)
  [ "$s" = victim ] && V=$n
  [ "$s" = witness ] && W=$n
done
vpci=$(basename $(readlink -f /sys/block/$V/device/..))
wpci=$(basename $(readlink -f /sys/block/$W/device/..))
slot() { echo $((0x$(echo $1 | cut -d: -f3 | cut -d. -f1))); }
hp=0
for r in /sys/bus/pnp/devices/*/resources; do
  for m in $(grep -o 'mem 0x[0-9a-f]*-0x[0-9a-f]*' $r | cut -d' ' -f2); do
    s=\${m%-*}; e=\${m#*-}; [ $((e - s + 1)) -eq 16 ] && hp=\${s#0x}
  done
done
echo "victim-pci=$vpci witness-pci=$wpci hotplug-base=$hp"
echo "witness-md5-before=$(md5sum /dev/$W | cut -d' ' -f1)"
echo $vpci > /sys/bus/pci/drivers/virtio-pci/unbind
echo "victim-unbound=$([ -e /sys/block/$V ] && echo no || echo yes)"
echo hostile-rss-before
read -t 60 -r line; echo "typed-before=$line"
hostile-pci $(slot $vpci) $(slot $wpci) $hp; echo "hostile-exit=$?"
sync; echo 3 > /proc/sys/vm/drop_caches
echo "witness-md5-after=$(md5sum /dev/$W | cut -d' ' -f1)"
dd if=/dev/urandom of=/tmp/w bs=4096 count=16 2>/dev/null
dd if=/tmp/w of=/dev/$W bs=4096 seek=${WITNESS_AT / 4096} conv=fsync 2>/dev/null; echo "witness-write=$?"
echo "witness-write-md5=$(md5sum /tmp/w | cut -d' ' -f1)"
echo "guest-warnings=$(dmesg | grep -ciE 'nobody cared|No irq handler|APIC error|spurious' || true)"
echo hostile-rss-after
read -t 60 -r line; echo "typed-after=$line"
`;

describe('a hostile guest attacks PCI config space, MSI-X, virtio-pci, hotplug (linux tier, cloud host)', function () {
  this.timeout(DEADLINE_MS + 60_000);
  const g = guestScope('hostile-pci-linux');

  it('the VMM refuses every attack, stays up with bounded memory, and the other devices keep working', async () => {
    const { kit, dir } = g;
    const { victim, witness, witnessBytes: w } = hostileDisks(dir);
    const cfg = parseYaml(fs.readFileSync(path.join(repoRoot(), 'hosts', 'cloud.yaml'), 'utf8')) as {
      boot: Record<string, unknown>;
      plugins: { name: string; id?: string; config?: Record<string, unknown> }[];
    };
    cfg.boot.kernel = kit.vmlinux;
    cfg.boot.initramfs = writeInitramfsWithScript(kit, script, path.join(dir, 'hostile-pci.initramfs'), {
      'bin/guestio': fs.readFileSync(guestTool('guestio')),
      'bin/hostile-pci': fs.readFileSync(guestTool('hostile-pci')),
    });
    cfg.boot.cmdline = `${String(cfg.boot.cmdline)} quiet iomem=relaxed tsvmm.stdin=console`;
    cfg.plugins = cfg.plugins.filter((p) => p.name !== 'virtio-net');
    const disk = cfg.plugins.find((p) => p.id === 'disk0')!;
    disk.id = 'victim';
    disk.config = { path: victim, serial: 'victim' };
    cfg.plugins.push({ name: 'virtio-blk', id: 'witness', config: { path: witness, serial: 'witness' } });
    const file = path.join(dir, 'hostile-pci.yaml');
    fs.writeFileSync(file, stringify(cfg));

    const { r, rss, tail } = await runWatchedVmm(file, dir, DEADLINE_MS);
    console.log(`      one boot: ${r.seconds.toFixed(1)} s; VmRSS before ${rss.before} kB, after ${rss.after} kB`);
    const res = guestResult(r.stdout.replace(/ (?=[a-z0-9-]+=)/g, '\n'));
    const shown = [...res].filter(([k]) => /^(pci|v|m|h|a)-/.test(k));
    console.log(shown.map(([k, val]) => `      ${k}=${val}`).join('\n'));
    const refusals = r.text.split('\n').filter((l) => /refused|nobody asked|left unmapped|failed/.test(l)).length;
    console.log(`      VMM log lines about refusals: ${refusals}`);

    // the VMM stayed up and the guest ended as it should (poweroff after the script), in one boot
    expect(r.signal, tail).to.equal(null);
    expect(r.code, tail).to.equal(0);
    expect(r.stdout.split('TSVMM-INIT-OK').length - 1, `one boot, no reset\n${tail}`).to.equal(1);
    expect(res.get('victim-unbound'), tail).to.equal('yes');
    expect(res.get('hostile-exit'), tail).to.equal('0');
    expect(res.get('pci-done'), tail).to.equal('1');
    expect(res.get('hotplug-base'), tail).to.not.equal('0');
    for (const [name, want] of Object.entries(PCI_ATTACKS)) {
      const got = res.get(name);
      if (want instanceof RegExp) expect(got, `${name}\n${tail}`).to.match(want);
      else expect(got, `${name}\n${tail}`).to.equal(want);
    }
    // the other devices kept working; the guest saw no stray interrupt
    expectWitnessIntact(res, witness, w, tail);
    expect(res.get('guest-warnings'), tail).to.equal('0');
    // bounded memory and a bounded log
    expect(rss.before, tail).to.be.greaterThan(0);
    expect(rss.after! - rss.before!, `VmRSS ${rss.before} -> ${rss.after} kB`).to.be.lessThan(RSS_BOUND_KB);
    expect(refusals, tail).to.be.at.most(PCI_LOG_BOUND);
  });
});
