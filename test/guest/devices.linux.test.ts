/**
 * Linux tier, issue 17: ONE boot of the guest kit kernel on the micro host with the devices of
 * plugins/virtio-balloon, plugins/virtio-vsock and the out-of-tree examples/virtio-rng, the guest's
 * own drivers (virtio_rng, virtio_balloon, vmw_vsock_virtio_transport) doing the work:
 *  - tsvmm and the example are packed (`npm pack`) and installed from the tarballs into a scratch
 *    project; the VMM is a child process running that installed tsvmm's runVm (VMM_CHILD), which
 *    finds `virtio-rng` in the project's node_modules; the test drives the balloon over IPC;
 *  - rng: the guest reads /dev/hwrng (virtio_rng is the current hw_random source);
 *  - vsock: guest → host (a host service on <uds>_5000 answers), host → guest (CONNECT 52 on <uds>,
 *    the guest's listener echoes), and 1 MiB guest → host under credit flow control (byte count
 *    and checksum compared);
 *  - balloon: the guest fills and frees 256 MiB, the host sets a 384 MiB target through the
 *    `Balloon` token, the guest inflates (its `actual` reaches the target) and the VMM's resident
 *    memory (VmRSS) drops accordingly; then target 0, the guest deflates and uses the memory again.
 * The console is a unix socket; the guest waits on it between the balloon steps.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { guestTool, parseGuestOutput } from '../harness/guest-kit.js';
import { offlineProject } from '../npm-pack/install-offline.js';
import { guestResult, guestScope, microConfig } from './guest-vm.js';

const MiB = 1024 * 1024;
const FILL_MIB = 256;
const TARGET_MIB = 384;
const BULK = 1 << 20;

const SCRIPT = `
echo "rng-current=$(cat /sys/class/misc/hw_random/rng_current)"
dd if=/dev/hwrng of=/tmp/r1 bs=64 count=8 2>/dev/null
dd if=/dev/hwrng of=/tmp/r2 bs=64 count=8 2>/dev/null
echo "rng-bytes=$(cat /tmp/r1 | wc -c)"
echo "rng-sha1=$(sha256sum /tmp/r1 | cut -d' ' -f1)"
echo "rng-sha2=$(sha256sum /tmp/r2 | cut -d' ' -f1)"
echo "rng-zero=$(dd if=/dev/zero bs=512 count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
vsockio connect 2 5000 hello-from-guest
vsockio listen 52 &
LP=$!
wait $LP
vsockio bulk 2 5001 ${BULK}
mkdir -p /mnt/fill && mount -t tmpfs -o size=400m tmpfs /mnt/fill
dd if=/dev/zero of=/mnt/fill/f bs=1M count=${FILL_MIB} 2>/dev/null
rm /mnt/fill/f
echo "memtotal-before=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
echo balloon-step-filled
read -t 600 -r line
echo "host-said=$line"
echo "memtotal-inflated=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
echo balloon-step-inflated
read -t 600 -r line
echo "memtotal-deflated=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
if dd if=/dev/zero of=/mnt/fill/g bs=1M count=${FILL_MIB} 2>/dev/null; then echo refill=ok; else echo refill=failed; fi
rm -f /mnt/fill/g
echo done=1
`;

/**
 * The VMM process: the installed tsvmm's runVm with the config it is given; it answers the test's
 * balloon requests (the `Balloon` token of the running VM) and reports its own VmRSS with each answer.
 */
const VMM_CHILD = `
import * as fs from 'node:fs';
const { runVm } = await import(process.argv[2]);
const { config, baseDir } = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const rss = () => Number(/VmRSS:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
let vm;
process.on('message', async (m) => {
  try {
    const b = vm.container.resolve(Symbol.for('tsvmm.Balloon'));
    if (m.op === 'target') b.setTarget(BigInt(m.bytes));
    const stats = m.op === 'stats' ? await b.requestStats() : undefined;
    process.send({ id: m.id, actual: String(b.status().actualBytes), rss: rss(), stats });
  } catch (err) {
    process.send({ id: m.id, error: String(err) });
  }
});
const r = await runVm({ config, baseDir }, { signals: [], onStarted: (v) => { vm = v; process.send({ started: true }); } });
process.send({ stopped: r.reason.kind });
process.disconnect();
`;

/** What the VMM child answers. */
interface Answer {
  actual: string;
  rss: number;
  stats?: Record<string, number>;
  error?: string;
}

/** Asks the VMM child about (or changes) its balloon. */
function ask(child: ChildProcess, m: { op: 'status' | 'stats' } | { op: 'target'; bytes: string }): Promise<Answer> {
  const id = Math.random();
  return new Promise((resolve, reject) => {
    const on = (a: Answer & { id?: number }): void => {
      if (a.id !== id) return;
      child.off('message', on);
      if (a.error) reject(new Error(a.error));
      else resolve(a);
    };
    child.on('message', on);
    child.send({ ...m, id });
  });
}

/** Polls `cond` (the balloon's guest-written `actual`) until it holds; the guest needs seconds under nesting. */
async function until(cond: () => Promise<boolean>, what: string, ms = 300_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A host service on a Unix socket: `answer` gets all the bytes of one connection (to EOF) and replies. */
function service(file: string, answer: (data: Buffer) => string): net.Server {
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => s.end(answer(Buffer.concat(parts))));
    s.on('error', () => {});
  });
  srv.listen(file);
  return srv;
}

describe('devices on Linux: rng (installed from its npm tarball), balloon, vsock — one boot', function () {
  this.timeout(1_200_000);
  const scope = guestScope('devices');
  const figures: Record<string, number> = {};
  let result = new Map<string, string>();
  let hostToGuest = '';
  let consoleText = '';

  it('boots with the three devices, runs the script to the end and powers off', async () => {
    const { kit, dir } = scope;
    const t0 = Date.now();
    const project = offlineProject(path.join(dir, 'project'));
    figures.installSeconds = (Date.now() - t0) / 1000;
    const installed = path.join(project, 'node_modules', 'tsvmm', 'dist', 'core', 'index.js');
    const uds = path.join(dir, 'v.sock');
    const servers = [
      service(`${uds}_5000`, (d) => `host-got:${d.toString()}`),
      service(`${uds}_5001`, (d) => `${d.length}:${d.reduce((s, x) => (s + x) % 65521, 0)}`),
    ];
    const sock = path.join(dir, 'console.sock');
    const config = microConfig({
      kit,
      dir,
      name: 'devices',
      script: SCRIPT,
      vcpus: 2,
      memory: '512M',
      files: { 'bin/vsockio': fs.readFileSync(guestTool('vsockio')) },
      cmdline: 'tsvmm.stdin=console',
      console: { kind: 'unix-socket', path: sock },
      plugins: [
        { name: 'virtio-rng', id: 'rng0' },
        { name: 'virtio-balloon', id: 'balloon0', config: { freePageReporting: false, stats: true } },
        { name: 'virtio-vsock', id: 'vsock0', config: { guestCid: 3, udsPath: uds } },
      ],
    });

    const cfgFile = path.join(dir, 'vm.json');
    fs.writeFileSync(cfgFile, JSON.stringify({ config, baseDir: dir }));
    const childFile = path.join(project, 'vmm-child.mjs');
    fs.writeFileSync(childFile, VMM_CHILD);
    const child = fork(childFile, [pathToFileURL(installed).href, cfgFile], { cwd: project, stdio: 'inherit' });
    const stopped = new Promise<string>((resolve) => {
      child.on('message', (m: { stopped?: string }) => m.stopped && resolve(m.stopped));
      child.on('exit', (code, sig) => resolve(`exit ${code ?? sig}`));
    });
    await new Promise<void>((resolve, reject) => {
      child.on('message', (m: { started?: boolean }) => m.started && resolve());
      child.on('exit', () => reject(new Error('the VMM ended before the VM started')));
    });

    let seen = '';
    let step = 0;
    const client = net.connect(sock);
    const actualIs = async (bytes: number): Promise<boolean> =>
      BigInt((await ask(child, { op: 'status' })).actual) === BigInt(bytes);
    const steps = async (): Promise<void> => {
      if (step === 0 && seen.includes('listen-ready=52')) {
        step = 1;
        const h = net.connect(uds);
        let got = '';
        h.on('data', (d: Buffer) => {
          got += d.toString();
          if (got.includes('echo:')) h.end();
        });
        h.on('close', () => (hostToGuest = got));
        h.on('error', () => {});
        h.write('CONNECT 52\nhello-from-host\n');
      }
      if (step === 1 && seen.includes('balloon-step-filled')) {
        step = 2;
        figures.rssFilled = (await ask(child, { op: 'target', bytes: String(TARGET_MIB * MiB) })).rss;
        await until(() => actualIs(TARGET_MIB * MiB), 'the balloon to inflate');
        const s = await ask(child, { op: 'stats' });
        figures.rssInflated = s.rss;
        figures.statsFree = s.stats?.freeMemory ?? -1;
        client.write('inflated\n');
      }
      if (step === 2 && seen.includes('balloon-step-inflated')) {
        step = 3;
        await ask(child, { op: 'target', bytes: '0' });
        await until(() => actualIs(0), 'the balloon to deflate');
        figures.rssDeflated = (await ask(child, { op: 'status' })).rss;
        client.write('deflated\n');
      }
    };
    client.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      void steps().catch((err: Error) => {
        seen += `\nHOST-STEP-FAILED ${err.message}\n`;
        client.write('failed\n');
      });
    });
    client.on('error', () => {});
    const reason = await stopped;
    if (!client.destroyed)
      await new Promise<void>((res) => {
        const t = setTimeout(res, 15_000);
        client.once('close', () => (clearTimeout(t), res()));
      });
    for (const s of servers) s.close();
    consoleText = seen;
    figures.seconds = (Date.now() - t0) / 1000;
    const out = parseGuestOutput(seen);
    expect(out.resultComplete, `VM stopped: ${reason}; console:\n${seen.slice(-5000)}`).to.equal(true);
    result = guestResult(out.result ?? '');
    console.log(`      devices linux: ${JSON.stringify(figures)}`);
    expect(result.get('done'), seen.slice(-5000)).to.equal('1');
    expect(out.exitCode).to.equal(0);
  });

  it('rng: virtio_rng feeds /dev/hwrng with fresh bytes from the out-of-tree plugin', function () {
    if (!result.size) this.skip();
    expect(result.get('rng-current'), consoleText.slice(-3000)).to.match(/^virtio_rng/);
    expect(result.get('rng-bytes')).to.equal('512');
    expect(result.get('rng-sha1')).to.not.equal(result.get('rng-sha2'));
    expect(result.get('rng-sha1')).to.not.equal(result.get('rng-zero'));
  });

  it('vsock: guest → host and host → guest streams over the Unix sockets, 1 MiB under flow control', function () {
    if (!result.size) this.skip();
    expect(result.get('connect-reply'), consoleText.slice(-3000)).to.equal('host-got:hello-from-guest');
    expect(result.get('listen-got')).to.equal('hello-from-host');
    expect(hostToGuest).to.match(/^OK \d+\necho:hello-from-host\n$/);
    let sum = 0;
    for (let i = 0; i < BULK; i++) sum = (sum + (i & 0xff)) % 65521;
    expect(result.get('bulk-reply')).to.equal(`${BULK}:${sum}`);
  });

  it("balloon: inflating gives the guest's freed memory back to the host (VmRSS drops), deflating returns it", function () {
    if (!result.size) this.skip();
    const before = Number(result.get('memtotal-before'));
    const inflated = Number(result.get('memtotal-inflated'));
    const deflated = Number(result.get('memtotal-deflated'));
    // without DEFLATE_ON_OOM the driver takes the balloon's pages out of MemTotal (kB)
    expect(before - inflated, consoleText.slice(-3000)).to.equal(TARGET_MIB * 1024);
    expect(deflated).to.equal(before);
    const drop = figures.rssFilled - figures.rssInflated;
    // 384 MiB inflated out of ~480 MiB free, of which 256 MiB were filled: at least 160 MiB were resident
    expect(drop, JSON.stringify(figures)).to.be.greaterThan(160 * MiB);
    expect(figures.statsFree).to.be.greaterThan(0);
    expect(result.get('refill')).to.equal('ok');
  });
});
