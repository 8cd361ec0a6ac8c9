/**
 * Linux tier, issue 14's snapshot proof: a guest keeps writing checksummed pages into its RAM (files in its
 * initramfs root, which lives in guest memory) and appending records to its disk; `vmm snapshot` (through the
 * migration plugin's control socket) saves it while it writes, the source is stopped, and `vmm restore` continues it
 * in a new process. The restored guest writes on, answers console input, then checks every page's md5 and every
 * disk record.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { guestResult, guestScope, microConfig, TYPED } from '../guest/guest-vm.js';
import { parseGuestOutput } from '../harness/guest-kit.js';
import { until } from './tiny-guest.js';
import { vmm, type VmmChild } from './vmm-process.js';

/** The guest: a background writer (pages + md5 list in RAM, one record per page on /dev/vda), then the checks. */
const SCRIPT = `
mkdir -p /mem
( i=0
  while [ ! -e /mem/stop ]; do
    i=$((i+1))
    head -c 16384 /dev/urandom > /mem/p$i
    md5sum /mem/p$i >> /mem/sums
    printf 'rec%08d\\n' $i | dd of=/dev/vda bs=12 seek=$i conv=notrunc,fsync 2>/dev/null
    echo $i > /mem/last
    [ $((i % 5)) -eq 0 ] && echo "tick=$i"
  done ) &
W=$!
echo "epoch-before=$(date +%s)"
echo ready-for-input
read -r line
echo "console-input=$line"
echo "epoch-after=$(date +%s)"
touch /mem/stop
wait $W
n=$(cat /mem/last)
echo "pages=$n"
echo "pages-ok=$(md5sum -c /mem/sums 2>/dev/null | grep -c ': OK$')"
bad=0; j=1
while [ $j -le $n ]; do
  r=$(dd if=/dev/vda bs=12 skip=$j count=1 2>/dev/null)
  [ "$r" = "$(printf 'rec%08d' $j)" ] || bad=$((bad+1))
  j=$((j+1))
done
echo "disk-bad=$bad"
`;

/** The highest `tick=N` the console shows. */
const lastTick = (out: string): number => Math.max(0, ...[...out.matchAll(/^tick=(\d+)\r?$/gm)].map((m) => +m[1]!));

describe('migration: a writing Linux guest is snapshotted and restored in a new process (linux tier)', function () {
  this.timeout(600_000);
  const g = guestScope('migration-snapshot');
  const children: VmmChild[] = [];
  after(() => children.forEach((c) => c.child.kill('SIGKILL')));

  it('its pages and disk records hold, it writes on and its console answers', async () => {
    const { kit, dir } = g;
    const disk = path.join(dir, 'disk.img');
    fs.writeFileSync(disk, Buffer.alloc(4 << 20));
    const config = microConfig({
      kit,
      dir,
      name: 'snap',
      script: SCRIPT,
      vcpus: 1,
      cmdline: 'tsvmm.stdin=console',
      plugins: [
        { name: 'raw-disk' },
        { name: 'virtio-blk', id: 'vda', config: { path: disk } },
        { name: 'migration', config: { control: 'ctl.sock' } },
      ],
    });
    const cfg = path.join(dir, 'snap.yaml');
    fs.writeFileSync(cfg, stringify(config));
    const t0 = Date.now();
    const source = vmm(['run', cfg], dir);
    children.push(source);
    const text = (v: VmmChild): string => v.stdout().toString('latin1');
    await until(() => lastTick(text(source)) >= 10 || source.child.exitCode !== null, 'pages written', 400_000, 200);
    expect(lastTick(text(source)), source.tail()).to.be.at.least(10);
    const booted = (Date.now() - t0) / 1000;

    const t1 = Date.now();
    const snap = vmm(['snapshot', 'ctl.sock', 'snapdir', '--leave-paused'], dir);
    expect(await snap.ended, snap.tail()).to.equal(0);
    const snapSeconds = (Date.now() - t1) / 1000;
    const before = lastTick(text(source));
    source.child.kill('SIGTERM');
    expect(await source.ended, source.tail()).to.equal(143);
    expect(parseGuestOutput(text(source)).resultComplete, 'the source never finished').to.equal(false);

    const t2 = Date.now();
    const restored = vmm(['restore', 'snapdir'], dir);
    children.push(restored);
    await until(
      () => lastTick(text(restored)) > before + 5 || restored.child.exitCode !== null,
      'writes',
      300_000,
      200,
    );
    const resumeSeconds = (Date.now() - t2) / 1000;
    restored.child.stdin!.write(`${TYPED}\n`);
    const code = await restored.ended;
    const out = parseGuestOutput(text(source) + text(restored)); // the result began on the source's console
    expect(out.resultComplete, restored.tail()).to.equal(true);
    const r = guestResult(out.result ?? '');
    console.log(
      `      boot to 10 pages ${booted.toFixed(1)} s; vmm snapshot ${snapSeconds.toFixed(1)} s; ` +
        `restore to more pages ${resumeSeconds.toFixed(1)} s; pages ${r.get('pages')} (snapshot at ~${before}); ` +
        `guest clock ${r.get('epoch-before')} -> ${r.get('epoch-after')}`,
    );
    expect(code, restored.tail()).to.equal(0);
    expect(r.get('console-input'), 'the console answers after the restore').to.equal(TYPED);
    const pages = Number(r.get('pages'));
    expect(pages, 'it wrote on after the restore').to.be.greaterThan(before + 5);
    expect(r.get('pages-ok'), 'every page in RAM matches its md5').to.equal(String(pages));
    expect(r.get('disk-bad'), 'every disk record is there').to.equal('0');
  });
});
