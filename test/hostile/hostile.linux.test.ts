/**
 * Linux tier, one boot of bin/vmm.js (micro host) with the hostile-guest program (hosts/guestkit/tools/hostile.c):
 *  - a virtio-blk disk ("victim") is unbound from its kernel driver and driven from user space through
 *    /dev/mem (iomem=relaxed): every attack of attacks.ts must end as it says (DEVICE_NEEDS_RESET, or the
 *    request completed with an error), and a valid read works before and after;
 *  - the serial port and the i8042 are flooded through port I/O;
 *  - the other devices keep working: a second disk ("witness") reads the same bytes after the attacks and a
 *    write to it reaches its file; the console answers typed input before and after;
 *  - the VMM's resident memory (VmRSS of its process, read here) stays bounded; both figures are printed.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { guestTool } from '../harness/guest-kit.js';
import { guestResult, guestScope, microConfig } from '../guest/guest-vm.js';
import { BLK_ATTACKS } from './attacks.js';
import { WITNESS_AT, expectWitnessIntact, hostileDisks, runWatchedVmm } from './watched-vmm.js';

/** Growth of the VMM's VmRSS over all attacks that the test accepts (guest pages the attacks touch included). */
const RSS_BOUND_KB = 64 * 1024;
const SERIAL_BYTES = 8000;
const I8042_COUNT = 600;

const script = `
echo 4 > /proc/sys/vm/nr_hugepages
for b in /sys/block/vd*; do
  n=\${b##*/}; s=$(cat $b/serial 2>/dev/null)
  [ "$s" = victim ] && V=$n
  [ "$s" = witness ] && W=$n
done
echo "victim-dev=$V witness-dev=$W"
echo "witness-md5-before=$(md5sum /dev/$W | cut -d' ' -f1)"
vdev=$(basename $(readlink -f /sys/block/$V/device))
plat=$(basename $(readlink -f /sys/block/$V/device/..))
base=$(grep " : $plat\\$" /proc/iomem | head -1 | tr -d ' ' | cut -d- -f1)
echo "victim-virtio=$vdev victim-platform=$plat victim-base=$base"
[ -n "$base" ] || grep -i -e lnro -e virtio /proc/iomem
echo $vdev > /sys/bus/virtio/drivers/virtio_blk/unbind
echo "victim-unbound=$([ -e /sys/block/$V ] && echo no || echo yes)"
echo hostile-rss-before
read -t 60 -r line; echo "typed-before=$line"
hostile blk $base; echo "blk-exit=$?"
hostile serial ${SERIAL_BYTES}; echo "serial-exit=$?"
hostile i8042 ${I8042_COUNT}; echo "i8042-exit=$?"
sync; echo 3 > /proc/sys/vm/drop_caches
echo "witness-md5-after=$(md5sum /dev/$W | cut -d' ' -f1)"
dd if=/dev/urandom of=/tmp/w bs=4096 count=16 2>/dev/null
dd if=/tmp/w of=/dev/$W bs=4096 seek=${WITNESS_AT / 4096} conv=fsync 2>/dev/null; echo "witness-write=$?"
echo "witness-write-md5=$(md5sum /tmp/w | cut -d' ' -f1)"
echo hostile-rss-after
read -t 60 -r line; echo "typed-after=$line"
`;

describe('a hostile guest drives virtio-blk, the UART and the i8042 from user space (linux tier)', function () {
  this.timeout(300_000);
  const g = guestScope('hostile-linux');

  it('the VMM refuses every attack, stays up with bounded memory, and the other devices keep working', async () => {
    const { kit, dir } = g;
    const { victim, witness, witnessBytes: w } = hostileDisks(dir);
    const config = microConfig({
      kit,
      dir,
      name: 'hostile',
      script,
      vcpus: 1,
      cmdline: 'iomem=relaxed tsvmm.stdin=console',
      files: { 'bin/hostile': fs.readFileSync(guestTool('hostile')) },
      plugins: [
        { name: 'raw-disk' },
        { name: 'virtio-blk', id: 'victim', config: { path: victim, serial: 'victim' } },
        { name: 'virtio-blk', id: 'witness', config: { path: witness, serial: 'witness' } },
      ],
    });
    const cfg = path.join(dir, 'hostile.yaml');
    fs.writeFileSync(cfg, stringify(config));
    const { r, rss, tail } = await runWatchedVmm(cfg, dir, 240_000);
    console.log(`      one boot: ${r.seconds.toFixed(1)} s; VmRSS before ${rss.before} kB, after ${rss.after} kB`);
    const res = guestResult(r.stdout.replace(/ (?=[a-z0-9-]+=)/g, '\n'));
    const blk = [...res].filter(([k]) => k.startsWith('blk-') || k.startsWith('serial-') || k.startsWith('i8042-'));
    console.log(blk.map(([k, val]) => `      ${k}=${val}`).join('\n'));

    // the VMM stayed up and the guest ended as it should (poweroff after the script)
    expect(r.signal, tail).to.equal(null);
    expect(r.code, tail).to.equal(0);
    expect(r.stdout.split('TSVMM-INIT-OK').length - 1, `one boot, no reset\n${tail}`).to.equal(1);
    expect(res.get('victim-unbound'), tail).to.equal('yes');
    expect(res.get('blk-exit'), tail).to.equal('0');
    expect(res.get('blk-magic'), tail).to.equal('74726976');
    // the program's driving works: a valid read before and after every attack
    for (const good of ['good-before', 'good-after']) {
      expect(res.get(`blk-${good}`), `${good}\n${tail}`).to.equal('used:0');
      expect(res.get(`blk-data-${good}`), good).to.equal(Buffer.from('VICTIM!!').toString('hex'));
    }
    for (const [name, want] of Object.entries(BLK_ATTACKS)) {
      expect(res.get(`blk-${name}`), `attack ${name}\n${tail}`).to.equal(want);
    }
    expect(res.get('blk-reset-storm'), tail).to.equal('used:0');
    expect(res.get('serial-exit'), tail).to.equal('0');
    expect(res.get('i8042-exit'), tail).to.equal('0');
    expect(r.stdout).to.include('hostile serial flood 0123456789');
    // the other devices kept working
    expectWitnessIntact(res, witness, w, tail);
    // bounded memory
    expect(rss.before, tail).to.be.greaterThan(0);
    expect(rss.after! - rss.before!, `VmRSS ${rss.before} -> ${rss.after} kB`).to.be.lessThan(RSS_BOUND_KB);
  });
});
