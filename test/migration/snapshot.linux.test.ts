/**
 * Linux tier, issue 14's snapshot proof: a guest keeps writing checksummed pages into its RAM (files in its
 * initramfs root, which lives in guest memory) and appending records to its disk; `vmm snapshot` (through the
 * migration plugin's control socket) saves it while it writes, the source is stopped, and `vmm restore` continues it
 * in a new process. The restored guest writes on, answers console input, then checks every page's md5 and every
 * disk record. Before that restore, three clones of the snapshot run at once in one `vmm restore --clone 3`, each
 * writing its own qcow2 overlay over the snapshotted disk (which stays unchanged).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { guestResult, guestScope, microConfig, repoRoot, TYPED } from '../guest/guest-vm.js';
import { parseGuestOutput, writeInitramfsWithScript, type GuestKit } from '../harness/guest-kit.js';
import { until } from './tiny-guest.js';
import { lastTick, recordsInARow, WRITER_CHECK, WRITER_START } from './writer-guest.js';
import { logRecord, vmm, type VmmChild } from './vmm-process.js';

/** The guest: the writer in the background, the clock and console input, then the checks. */
const SCRIPT = `${WRITER_START}
echo "epoch-before=$(date +%s)"
echo ready-for-input
read -r line
echo "console-input=$line"
echo "epoch-after=$(date +%s)"
${WRITER_CHECK}`;

const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/**
 * `vmm restore snapdir --clone 3` (one process, three guests from the one snapshot): clone 1 is paused through its
 * control socket once it wrote on, clones 2 and 3 write 15 pages further, then the process is ended. Checks that the
 * snapshotted disk did not change and holds nothing past the snapshot, and that each clone's qcow2 overlay (backed
 * by it, clean by `qemu-img check`) holds its own clone's records: clone 1's stop short of the others'. Returns the
 * records each overlay holds.
 */
async function threeClones(dir: string, disk: string, before: number, children: VmmChild[]): Promise<number[]> {
  const baseSha = sha256(disk);
  const baseRecords = recordsInARow(fs.readFileSync(disk));
  const cdir = (i: number): string => path.join(dir, 'snapdir', 'clones', `clone-${i}`);
  const consoleOf = (i: number): string => {
    const f = path.join(cdir(i), 'serial.console');
    return fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '';
  };
  const ticks = (i: number): number => lastTick(consoleOf(i));
  const consoles = (): string => [1, 2, 3].map((i) => `clone ${i}: ${consoleOf(i).slice(-600) || '(none)'}`).join('\n');
  const run = vmm(['restore', 'snapdir', '--clone', '3'], dir);
  children.push(run);
  const evidence = (): string => `${run.tail()}\n${consoles()}`;
  const wait = async (check: () => boolean, what: string): Promise<void> => {
    await until(() => check() || run.child.exitCode !== null, what, 240_000, 200).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; ${evidence()}`);
    });
    // an early exit ends the wait too: name it (not the next step's missing socket)
    if (run.child.exitCode !== null)
      throw new Error(`vmm restore --clone 3 exited (${run.child.exitCode}) before ${what}; ${evidence()}`);
  };
  await wait(() => ticks(1) > before, 'clone 1 to write on');
  const pause = vmm(['pause', path.join(cdir(1), 'ctl.sock')], dir);
  expect(await pause.ended, pause.tail()).to.equal(0);
  const held = ticks(1);
  await wait(() => ticks(2) >= held + 15 && ticks(3) >= held + 15, 'clones 2 and 3 to write 15 pages more');
  const last1 = ticks(1); // a console line on its way at the pause may land after it: one tick at most
  expect(last1, 'the paused clone wrote no more').to.be.at.most(held + 5);
  run.child.kill('SIGTERM');
  await run.ended;
  expect(sha256(disk), 'the snapshotted image is unchanged').to.equal(baseSha);
  return [1, 2, 3].map((i) => {
    const overlay = path.join(cdir(i), 'vda.qcow2');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', overlay], { encoding: 'utf8' }));
    expect(path.resolve(cdir(i), info['backing-filename'])).to.equal(path.resolve(disk));
    execFileSync('qemu-img', ['check', overlay]);
    const flat = path.join(cdir(i), 'flat.raw');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', overlay, flat]);
    const n = recordsInARow(fs.readFileSync(flat));
    expect(n, `clone ${i} wrote past the snapshot (${baseRecords} records) into its own overlay`).to.be.at.least(
      Math.max(ticks(i), baseRecords + 1),
    );
    // clone 1 stopped by its last tick + 5 records (a tick every 5): clones 2 and 3 wrote 10 and more past that
    if (i === 1) expect(n, "clone 1's overlay has none of the others' later records").to.be.at.most(last1 + 5);
    return n;
  });
}

/** The config of the writing guest on `host` (the micro host, or the cloud host without its NIC), as YAML data. */
function writerConfig(kit: GuestKit, dir: string, host: 'micro' | 'cloud', disk: string): object {
  const control = { name: 'migration', config: { control: 'ctl.sock' } };
  if (host === 'micro')
    return microConfig({
      kit,
      dir,
      name: 'snap',
      script: SCRIPT,
      vcpus: 1,
      cmdline: 'tsvmm.stdin=console',
      plugins: [{ name: 'raw-disk' }, { name: 'virtio-blk', id: 'vda', config: { path: disk } }, control],
    });
  const cfg = parseYaml(fs.readFileSync(path.join(repoRoot(), 'hosts', 'cloud.yaml'), 'utf8')) as {
    boot: Record<string, unknown>;
    plugins: { name: string; id?: string; config?: Record<string, unknown> }[];
  };
  cfg.boot.kernel = kit.vmlinux;
  cfg.boot.initramfs = writeInitramfsWithScript(kit, SCRIPT, path.join(dir, 'cloud.initramfs'));
  cfg.boot.cmdline = `${String(cfg.boot.cmdline)} quiet tsvmm.stdin=console`;
  cfg.plugins = cfg.plugins.filter((p) => p.name !== 'virtio-net');
  for (const p of cfg.plugins) if (p.id === 'disk0') p.config = { ...p.config, path: disk, format: 'raw' };
  cfg.plugins.push(control);
  return cfg;
}

/**
 * The proof on one host: boot, `vmm snapshot --leave-paused` while the guest writes, SIGTERM, (micro: three clones,
 * see threeClones), `vmm restore` in a new process; the restored guest writes on, answers its console and checks.
 */
async function snapshotProof(
  kit: GuestKit,
  root: string,
  host: 'micro' | 'cloud',
  children: VmmChild[],
): Promise<void> {
  const dir = path.join(root, host);
  fs.mkdirSync(dir);
  const disk = path.join(dir, 'disk.img');
  fs.writeFileSync(disk, Buffer.alloc(4 << 20));
  const config = writerConfig(kit, dir, host, disk);
  const cfg = path.join(dir, 'snap.yaml');
  fs.writeFileSync(cfg, stringify(config));
  const t0 = Date.now();
  const source = vmm(['run', cfg], dir);
  children.push(source);
  const text = (v: VmmChild): string => v.stdout().toString('latin1');
  await until(
    () => lastTick(text(source)) >= 10 || source.child.exitCode !== null,
    'pages written',
    400_000,
    200,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; source:\n${source.tail()}`);
  });
  expect(lastTick(text(source)), source.tail()).to.be.at.least(10);
  const booted = (Date.now() - t0) / 1000;

  const t1 = Date.now();
  const snap = vmm(['snapshot', 'ctl.sock', 'snapdir', '--leave-paused'], dir);
  expect(await snap.ended, snap.tail()).to.equal(0);
  const snapSeconds = (Date.now() - t1) / 1000;
  const before = lastTick(text(source));
  // micro: SIGTERM stops the VMM (143); cloud: SIGTERM would press the power button of the paused guest
  source.child.kill(host === 'micro' ? 'SIGTERM' : 'SIGKILL');
  expect(await source.ended, source.tail()).to.equal(host === 'micro' ? 143 : null);
  expect(parseGuestOutput(text(source)).resultComplete, 'the source never finished').to.equal(false);

  if (host === 'micro') {
    // Three clones of the snapshot at once, before the restore below writes the snapshotted disk on.
    const tc = Date.now();
    const clones = await threeClones(dir, disk, before, children);
    console.log(`      3 clones: ${((Date.now() - tc) / 1000).toFixed(1)} s; records ${clones.join(', ')}`);
  }

  const t2 = Date.now();
  const restored = vmm(['restore', 'snapdir'], dir);
  children.push(restored);
  await until(
    () => lastTick(text(restored)) > before + 5 || restored.child.exitCode !== null,
    'writes',
    300_000,
    200,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message} after tick ${before}; restored:\n${restored.tail()}`);
  });
  const resumeSeconds = (Date.now() - t2) / 1000;
  restored.child.stdin!.write(`${TYPED}\n`);
  const code = await restored.ended;
  const out = parseGuestOutput(text(source) + text(restored)); // the result began on the source's console
  expect(out.resultComplete, restored.tail()).to.equal(true);
  const r = guestResult(out.result ?? '');
  console.log(
    `      ${host}: boot to 10 pages ${booted.toFixed(1)} s; vmm snapshot ${snapSeconds.toFixed(1)} s; ` +
      `restore to more pages ${resumeSeconds.toFixed(1)} s; pages ${r.get('pages')} (snapshot at ~${before}); ` +
      `guest clock ${r.get('epoch-before')} -> ${r.get('epoch-after')}; the restored vCPUs ran ` +
      `${String(logRecord(restored.stderr(), 'migration: the guest runs')?.sinceProcessStartMs)} ms after process start`,
  );
  expect(code, restored.tail()).to.equal(0);
  expect(r.get('console-input'), 'the console answers after the restore').to.equal(TYPED);
  const pages = Number(r.get('pages'));
  expect(pages, 'it wrote on after the restore').to.be.greaterThan(before + 5);
  expect(r.get('pages-ok'), 'every page in RAM matches its md5').to.equal(String(pages));
  expect(r.get('disk-bad'), 'every disk record is there').to.equal('0');
}

describe('migration: a writing Linux guest is snapshotted and restored in a new process (linux tier)', function () {
  this.timeout(600_000);
  const g = guestScope('migration-snapshot');
  const children: VmmChild[] = [];
  after(() => children.forEach((c) => c.child.kill('SIGKILL')));

  it('micro host: pages and disk records hold, it writes on, its console answers; three clones', async () => {
    await snapshotProof(g.kit, g.dir, 'micro', children);
  });

  it('cloud host (PCI, virtio-pci with MSI-X, ACPI, 2 vCPUs): the same', async () => {
    await snapshotProof(g.kit, g.dir, 'cloud', children);
  });
});
