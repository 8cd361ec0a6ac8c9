import { expect } from 'chai';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import { guestKit, parseGuestOutput, writeInitramfsWithScript, type GuestKit, type GuestOutput } from '../../hosts/guestkit/index.js';
import { detectHost, projectLayout } from '../../hosts/sandbox/index.js';
import { TapBackend } from './backends/tap.js';
import { c } from '../../core/native/libc.js';

/**
 * Linux tier (runs inside the sandbox's L1, or on a hardware-KVM host, as root):
 * the micro host boots the guest kit with a virtio-net interface.
 *  - tap: the guest configures 192.168.77.2/24, pings the host end of a tap (192.168.77.1,
 *    made here, persistent for the test), then moves 64 MiB each way over TCP to/from Node
 *    servers in this process, md5 checked on both sides;
 *  - socket: two VMs on the unix-datagram backend (no tap) ping each other.
 * All traffic stays on addresses this test assigns inside this (private) machine.
 */
const TAP = 'tsvmmnet0';
const HOST_IP = '192.168.77.1';
const GUEST_IP = '192.168.77.2';
const SIZE = 64 << 20;
const UP_PORT = 5601;
const DOWN_PORT = 5602;

const setTapPersist = (name: string, on: boolean): void => {
  const t = TapBackend.open({ name, create: true });
  try {
    // TUNSETPERSIST = _IOW('T', 203, int); the fd belongs to `t`, closed below.
    if ((c.ioctlInt(t.fd(0), 0x400454cb, on ? 1 : 0) as number) < 0) throw new Error(`TUNSETPERSIST ${on} on ${name} failed`);
  } finally { t.close(); }
};

/** Deterministic pseudo-random bytes (xorshift), so the host side needs no big buffer twice. */
function patternChunk(seed: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i += 4) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b.writeUInt32LE(x, i); }
  return b;
}

const mbps = (bytes: number, ms: number): string => (bytes / 1e6 / Math.max(ms / 1000, 0.001)).toFixed(1);

interface VmRun { out: GuestOutput; console: string; code: number | null }

describe('virtio-net on Linux (micro host, guest kit)', function () {
  this.timeout(30 * 60_000);
  let kit: GuestKit;
  let tmp: string;
  const { root, compiled } = projectLayout();

  before(async function () {
    if (!detectHost().canBootLinux || !existsSync('/dev/net/tun') || process.getuid?.() !== 0) {
      console.log('      (skipped: needs a KVM that boots Linux (the sandbox L1 or hardware KVM), /dev/net/tun and root)');
      this.skip();
    }
    kit = await guestKit();
    tmp = mkdtempSync(join(tmpdir(), 'tsvmm-net-linux-'));
  });
  after(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  /** Boots the micro host with `netConfig` for virtio-net and `script` as the guest's job. */
  function runVm(name: string, script: string, netConfig: unknown, timeoutMs: number, cmdline = ''): Promise<VmRun> {
    const micro = parse(readFileSync(join(root, 'hosts', 'micro.yaml'), 'utf8')) as { machine: Record<string, unknown>; boot: Record<string, unknown>; plugins: unknown[] };
    micro.machine.memory = '512M';
    micro.boot.kernel = kit.vmlinux;
    micro.boot.initramfs = writeInitramfsWithScript(kit, script, join(tmp, `${name}-initrd.gz`));
    micro.boot.cmdline = `${String(micro.boot.cmdline)} quiet ${cmdline}`.trimEnd();
    micro.plugins.push({ name: 'virtio-net', config: netConfig });
    const cfg = join(tmp, `${name}.yaml`);
    writeFileSync(cfg, stringify(micro));
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [join(root, 'bin', 'vmm.js'), 'run', cfg], {
        cwd: tmp, env: { ...process.env, VMM_DIST: relative(root, compiled) || 'dist' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      // TSVMM_NET_LIVE=1: the VM's console as it comes, prefixed with the VM's name (debugging).
      const live = process.env.TSVMM_NET_LIVE === '1' ? (s: string) => process.stdout.write(s.replace(/^(?=.)/gm, `[${name}] `)) : undefined;
      child.stdout.on('data', (d: Buffer) => { text += d.toString('latin1'); live?.(d.toString('latin1')); });
      child.stderr.on('data', (d: Buffer) => { text += d.toString('latin1'); live?.(d.toString('latin1')); });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('exit', (code) => { clearTimeout(timer); resolve({ out: parseGuestOutput(text), console: text, code }); });
    });
  }

  /** Prints the guest's interface counters per phase and the VMM's device/exit statistics (diagnostics). */
  const logStatistics = (r: VmRun): void => {
    for (const l of (r.out.result ?? '').split('\n')) if (l.startsWith('STAT ')) console.log(`      guest ${l}`);
    for (const l of r.console.split('\n')) {
      if (!/virtio-net statistics|vCPU exit statistics/.test(l)) continue;
      const j = l.indexOf('{');
      try {
        const o = JSON.parse(l.slice(j)) as Record<string, unknown>;
        delete o.pairs; delete o.time; delete o.level;
        console.log(`      vmm ${JSON.stringify(o)}`);
      } catch { console.log(`      vmm ${l.slice(0, 1500)}`); }
    }
  };

  const report = (r: VmRun): string => `exit ${r.code}\n${r.console.slice(-6000)}`;

  describe('tap backend', () => {
    let servers: net.Server[] = [];
    before(() => {
      try { execFileSync('modprobe', ['tun'], { stdio: 'ignore', timeout: 10_000 }); } catch { /* built in, or loaded by the sandbox */ }
    });
    beforeEach(() => {
      setTapPersist(TAP, true);
      execFileSync('ip', ['link', 'set', 'dev', TAP, 'up']);
      execFileSync('ip', ['addr', 'replace', `${HOST_IP}/24`, 'dev', TAP]);
    });
    afterEach(() => {
      for (const s of servers) s.close();
      servers = [];
      try { setTapPersist(TAP, false); } catch { /* already gone */ }
    });

    it('the guest pings the host through the tap and moves 64 MiB each way over TCP, checksums equal', async () => {
      // Host side: UP_PORT receives SIZE bytes and hashes them; DOWN_PORT sends SIZE bytes of a pattern.
      let upHash = '';
      let upBytes = 0;
      const upDone = new Promise<void>((res) => {
        const s = net.createServer((sock) => {
          const h = createHash('md5');
          let t0 = 0;
          sock.on('data', (d: Buffer) => {
            if (!t0) t0 = Date.now();
            h.update(d);
            upBytes += d.length;
            if (upBytes >= SIZE && !upHash) {
              upHash = h.digest('hex');
              console.log(`      guest -> host: ${SIZE >> 20} MiB in ${((Date.now() - t0) / 1000).toFixed(1)} s (${mbps(SIZE, Date.now() - t0)} MB/s)`);
              sock.end();
              res();
            }
          });
        }).listen(UP_PORT, HOST_IP);
        servers.push(s);
      });
      const downHash = createHash('md5');
      const chunks: Buffer[] = [];
      for (let i = 0; i < SIZE / (1 << 20); i++) { const ch = patternChunk(i + 1, 1 << 20); chunks.push(ch); downHash.update(ch); }
      const downExpected = downHash.digest('hex');
      // allowHalfOpen: the guest's nc shuts its sending side at once (stdin is /dev/null); without it
      // Node would end the socket on that FIN and drop the rest of the stream.
      servers.push(net.createServer({ allowHalfOpen: true }, (sock) => {
        const t0 = Date.now();
        sock.on('close', () => console.log(`      host -> guest: ${(sock.bytesWritten / 2 ** 20).toFixed(0)} MiB in ${((Date.now() - t0) / 1000).toFixed(1)} s (${mbps(sock.bytesWritten, Date.now() - t0)} MB/s)`));
        let i = 0;
        const push = (): void => {
          while (i < chunks.length) { if (!sock.write(chunks[i++])) { sock.once('drain', push); return; } }
          sock.end();
        };
        push();
      }).listen(DOWN_PORT, HOST_IP));

      const script = `
set -e
ip link set eth0 up
ip addr add ${GUEST_IP}/24 dev eth0
ping -c 3 -W 5 ${HOST_IP} >/tmp/ping.txt && echo PING-OK
head -c ${SIZE} /dev/urandom > /tmp/up
echo "UP-MD5 $(md5sum /tmp/up | cut -d' ' -f1)"
stats() { echo "STAT $1 tx $(cat /sys/class/net/eth0/statistics/tx_packets) $(cat /sys/class/net/eth0/statistics/tx_bytes) rx $(cat /sys/class/net/eth0/statistics/rx_packets) $(cat /sys/class/net/eth0/statistics/rx_bytes) irq $(grep virtio /proc/interrupts | tr -s ' ' | tr '\n' '|') tcp $(grep '^Tcp:' /proc/net/snmp | tail -1 | cut -d' ' -f11-14)" || true; }
stats start
timeout 900 nc ${HOST_IP} ${UP_PORT} < /tmp/up > /dev/null
stats up
rm /tmp/up
timeout 900 nc ${HOST_IP} ${DOWN_PORT} > /tmp/down < /dev/null
stats down
echo "DOWN-SIZE $(wc -c < /tmp/down)"
echo "DOWN-MD5 $(md5sum /tmp/down | cut -d' ' -f1)"
`;
      // The guest's driver runs with its defaults (TX NAPI on: sent buffers are freed on TX
      // interrupts, which TCP small queues wait for). Earlier versions booted it with
      // virtio_net.napi_tx=0 because each interrupt then cost two hops to the VMM's main thread
      // (0.2 MB/s upload); see README "Performance".
      const r = await runVm('tap', script, { mac: '52:54:00:77:00:02', backend: { kind: 'tap', name: TAP } }, 25 * 60_000);
      logStatistics(r);
      expect(r.out.initReached, report(r)).to.equal(true);
      expect(r.out.result, report(r)).to.include('PING-OK');
      await Promise.race([upDone, new Promise((res) => setTimeout(res, 1000))]);
      const guestUp = /UP-MD5 ([0-9a-f]{32})/.exec(r.out.result ?? '')?.[1];
      expect(upBytes, report(r)).to.equal(SIZE);
      expect(guestUp, report(r)).to.equal(upHash);
      expect(r.out.result, report(r)).to.include(`DOWN-SIZE ${SIZE}`);
      expect(/DOWN-MD5 ([0-9a-f]{32})/.exec(r.out.result ?? '')?.[1], report(r)).to.equal(downExpected);
      expect(r.out.exitCode, report(r)).to.equal(0);
    });
  });

  describe('socket backend (no tap, no privileges needed by the backend)', () => {
    it('two VMs on a unix datagram wire ping each other', async () => {
      const a = join(tmp, 'a.sock');
      const b = join(tmp, 'b.sock');
      const script = (me: string, peer: string): string => `
ip link set eth0 up
ip addr add ${me}/24 dev eth0
ok=
for i in $(seq 1 120); do
  if ping -c 1 -W 1 ${peer} >/dev/null 2>&1; then ok=1; break; fi
done
[ -n "$ok" ] && echo PEER-OK
sleep 20
[ -n "$ok" ]
`;
      const [ra, rb] = await Promise.all([
        runVm('sock-a', script('192.168.78.1', '192.168.78.2'), { mac: '52:54:00:78:00:01', backend: { kind: 'socket', unix: { path: a, peer: b } } }, 10 * 60_000),
        runVm('sock-b', script('192.168.78.2', '192.168.78.1'), { mac: '52:54:00:78:00:02', backend: { kind: 'socket', unix: { path: b, peer: a } } }, 10 * 60_000),
      ]);
      for (const r of [ra, rb]) {
        expect(r.out.initReached, report(r)).to.equal(true);
        expect(r.out.result, report(r)).to.include('PEER-OK');
        expect(r.out.exitCode, report(r)).to.equal(0);
      }
    });
  });
});
