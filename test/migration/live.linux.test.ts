/**
 * Linux tier, issue 14's live-migration proof: a guest that keeps writing checksummed pages into its RAM and
 * records onto its disk, and pings the host over its tap, is migrated live from one `vmm run` process to a
 * `vmm receive` process in the same sandbox (over a Unix socket, through the source's control socket). After the
 * switch-over it writes on, pings again over the tap (re-opened by the destination), answers its console, and
 * checks every page's md5 and every disk record.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { c } from '../../core/native/libc.js';
import { TapBackend } from '../../plugins/virtio-net/backends/tap.js';
import { guestResult, guestScope, microConfig, TYPED } from '../guest/guest-vm.js';
import { parseGuestOutput } from '../harness/guest-kit.js';
import { until } from './tiny-guest.js';
import { lastTick, WRITER_CHECK, WRITER_START } from './writer-guest.js';
import { logRecord, vmm, type VmmChild } from './vmm-process.js';

const TAP = 'tsvmmmig0';
const HOST_IP = '192.168.79.1';
const GUEST_IP = '192.168.79.2';

/** Makes the tap persistent (or not), so it outlives the source VMM for the destination to open. */
const setTapPersist = (on: boolean): void => {
  const t = TapBackend.open({ name: TAP, create: true, queuePairs: 1 });
  try {
    // TUNSETPERSIST = _IOW('T', 203, int)
    if ((c.ioctlInt(t.fd(0), 0x400454cb, on ? 1 : 0) as number) < 0) throw new Error(`TUNSETPERSIST ${on} failed`);
  } finally {
    t.close();
  }
};

const SCRIPT = `
ip link set eth0 up
ip addr add ${GUEST_IP}/24 dev eth0
ping -c 2 -W 5 ${HOST_IP} >/dev/null && echo ping-before=ok
${WRITER_START}
echo ready-for-input
read -r line
echo "console-input=$line"
ping -c 2 -W 5 ${HOST_IP} >/dev/null && echo ping-after=ok
${WRITER_CHECK}`;

describe('migration: a writing Linux guest migrates live between two VMM processes (linux tier)', function () {
  this.timeout(600_000);
  const g = guestScope('migration-live');
  const children: VmmChild[] = [];
  before(() => {
    try {
      execFileSync('modprobe', ['tun'], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      /* built in, or loaded by the sandbox */
    }
    setTapPersist(true);
    execFileSync('ip', ['link', 'set', 'dev', TAP, 'up']);
    execFileSync('ip', ['addr', 'replace', `${HOST_IP}/24`, 'dev', TAP]);
  });
  after(() => {
    children.forEach((ch) => ch.child.kill('SIGKILL'));
    try {
      setTapPersist(false);
    } catch {
      /* gone already */
    }
  });

  it('its pages and disk records hold across the switch-over, it pings over its tap and answers', async () => {
    const { kit, dir } = g;
    const disk = path.join(dir, 'disk.img');
    fs.writeFileSync(disk, Buffer.alloc(4 << 20));
    const config = microConfig({
      kit,
      dir,
      name: 'live',
      script: SCRIPT,
      vcpus: 1,
      cmdline: 'tsvmm.stdin=console',
      plugins: [
        { name: 'raw-disk' },
        { name: 'virtio-blk', id: 'vda', config: { path: disk } },
        { name: 'virtio-net', id: 'net0', config: { mac: '52:54:00:79:00:02', backend: { kind: 'tap', name: TAP } } },
        { name: 'migration', config: { control: 'ctl.sock' } },
      ],
    });
    const cfg = path.join(dir, 'live.yaml');
    fs.writeFileSync(cfg, stringify(config));
    const text = (v: VmmChild): string => v.stdout().toString('latin1');

    const dest = vmm(['receive', `unix:${path.join(dir, 'mig.sock')}`], dir);
    children.push(dest);
    const t0 = Date.now();
    const source = vmm(['run', cfg], dir);
    children.push(source);
    await until(() => lastTick(text(source)) >= 10 || source.child.exitCode !== null, 'pages written', 400_000, 200);
    expect(text(source), source.tail()).to.match(/^ping-before=ok\r?$/m);
    const booted = (Date.now() - t0) / 1000;

    const t1 = Date.now();
    const mig = vmm(['migrate', 'ctl.sock', `unix:${path.join(dir, 'mig.sock')}`], dir);
    expect(await mig.ended, `${mig.tail()}\n${source.tail()}\n${dest.tail()}`).to.equal(0);
    const before = lastTick(text(source));
    expect(await source.ended, source.tail()).to.equal(0);
    const migSeconds = (Date.now() - t1) / 1000;
    await until(() => lastTick(text(dest)) > before + 5 || dest.child.exitCode !== null, 'writes', 300_000, 200).catch(
      (err: unknown) => {
        // say where the destination stood: its console and log tail (the guest did not go on writing)
        throw new Error(`${(err as Error).message} after tick ${before}; destination:\n${dest.tail()}`);
      },
    );
    dest.child.stdin!.write(`${TYPED}\n`);
    const code = await dest.ended;
    const out = parseGuestOutput(text(source) + text(dest));
    const r = guestResult(out.result ?? '');
    console.log(
      `      boot to 10 pages ${booted.toFixed(1)} s; vmm migrate ${migSeconds.toFixed(1)} s ` +
        `(${mig.stdout().toString().trim().split('\n').pop()}); pages ${r.get('pages')} (switch-over at ~${before})`,
    );
    // where the downtime went (ms since the source's stop) and the destination process's start to its vCPUs running
    const phases = (
      logRecord(source.stderr(), 'migration: the destination started') ??
      logRecord(source.stderr(), 'migration: committed')
    )?.phases;
    const runs = logRecord(dest.stderr(), 'migration: the guest runs');
    // the guest's downtime: from the source's stop (its commit record's time less the ms since the stop it gives) to
    // the destination's record of its vCPUs running (both processes on one clock)
    const committed = logRecord(source.stderr(), 'migration: committed');
    const stopAt = Number(committed?.time) - Number((committed?.phases as { readyMs?: number } | undefined)?.readyMs);
    console.log(
      `      source phases ${JSON.stringify(phases)}; destination runs ${String(runs?.sinceProcessStartMs)} ms ` +
        `after its start, ${Math.round(Number(runs?.time) - stopAt)} ms after the source's stop`,
    );
    // the disk and the tap are opened once the source let go: the VM itself was built while the pages came
    expect(logRecord(dest.stderr(), 'migration: VM built before the stop'), dest.tail()).to.deep.include({
      deferred: 2,
    });
    expect(out.resultComplete, dest.tail()).to.equal(true);
    expect(code, dest.tail()).to.equal(0);
    expect(mig.stdout().toString()).to.match(/round 1: /);
    expect(r.get('console-input'), 'the console answers after the switch-over').to.equal(TYPED);
    expect(r.get('ping-after'), 'it pings over the tap the destination re-opened').to.equal('ok');
    const pages = Number(r.get('pages'));
    expect(pages, 'it wrote on after the switch-over').to.be.greaterThan(before + 5);
    expect(r.get('pages-ok'), 'every page in RAM matches its md5').to.equal(String(pages));
    expect(r.get('disk-bad'), 'every disk record is there').to.equal('0');
  });
});
