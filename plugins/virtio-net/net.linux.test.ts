import { expect } from 'chai';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import {
  guestKit,
  parseGuestOutput,
  writeInitramfsWithScript,
  type GuestKit,
  type GuestOutput,
  detectHost,
  projectLayout,
  guestTool,
} from '../../test/harness/guest-kit.js';
import { CONSOLE_INPUT_STEP, TYPED } from '../../test/guest/guest-vm.js';
import { loadTun, removeHostTap, upHostTap, xorshiftBytes } from '../../test/harness/host-net.js';

/**
 * Linux tier (runs inside the sandbox's L1, or on a hardware-KVM host, as root):
 * `bin/vmm.js run` (as users start it) boots the micro host (2 vCPUs for the tap guest), the guest kit and a
 * virtio-net interface; a line typed on the VMM's stdin reaches the guest's console; each run
 * must end with exit status 0.
 *  - tap, 2 queue pairs: the guest configures 192.168.77.2/24, pings the host end of a
 *    multi-queue tap (192.168.77.1, made here, persistent for the test), then moves 64 MiB each
 *    way over TCP to/from Node servers in this process, md5 checked on both sides, senders pinned
 *    to each CPU so both queue pairs carry frames (the VMM's statistics say so). Then the control
 *    queue: promiscuous mode on, a new MAC (`ip link set address`); the host's neighbour entry
 *    learns the new MAC from the guest's ARP, and the device answered every control command.
 *  - socket: two VMs (1 vCPU each) on the unix-datagram backend (no tap): one sends 4 MiB over
 *    TCP to the other, md5 equal on both sides.
 * All traffic stays on addresses this test assigns inside this (private) machine.
 */
const TAP = 'tsvmmnet0';
const HOST_IP = '192.168.77.1';
const GUEST_IP = '192.168.77.2';
const SIZE = 64 << 20;
const UP_PORT = 5601;
const DOWN_PORT = 5602;
const NEW_MAC = '52:54:00:77:00:99';
/** What one VM sends the other over the socket backend (both VMs share L1's two CPUs: 1 vCPU each). */
const SOCKET_BYTES = 4 << 20;

const mbps = (bytes: number, ms: number): string => (bytes / 1e6 / Math.max(ms / 1000, 0.001)).toFixed(1);

interface VmRun {
  out: GuestOutput;
  console: string;
  code: number | null;
  seconds: number;
}

/** The VMM's 'virtio-net statistics' record (logged when the device is destroyed). */
interface NetStats {
  pairs: { txFrames: number; rxFrames: number }[];
  ctrl: { commands: number; errors: number };
}
function netStats(text: string): NetStats | undefined {
  for (const l of text.split('\n')) {
    if (!l.includes('virtio-net statistics')) continue;
    try {
      return JSON.parse(l.slice(l.indexOf('{'))) as NetStats;
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

describe('virtio-net on Linux (micro host, guest kit)', function () {
  this.timeout(30 * 60_000);
  let kit: GuestKit;
  let tmp: string;
  const { root, compiled } = projectLayout();

  before(async function () {
    if (!detectHost().canBootLinux || !existsSync('/dev/net/tun') || process.getuid?.() !== 0) {
      console.log(
        '      (skipped: needs a KVM that boots Linux (the sandbox L1 or hardware KVM), /dev/net/tun and root)',
      );
      this.skip();
    }
    kit = await guestKit();
    tmp = mkdtempSync(join(tmpdir(), 'tsvmm-net-linux-'));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** Boots the micro host with `netConfig` for virtio-net and `script` as the guest's job. */
  function runVm(
    name: string,
    script: string,
    netConfig: unknown,
    timeoutMs: number,
    vcpus = 2,
    /** Sees the output so far; answer a prompt on stdin. Without it stdin ends after the typed line. */
    onOutput?: (text: string, stdin: NodeJS.WritableStream) => void,
  ): Promise<VmRun> {
    const micro = parse(readFileSync(join(root, 'hosts', 'micro.yaml'), 'utf8')) as {
      machine: Record<string, unknown>;
      boot: Record<string, unknown>;
      plugins: unknown[];
    };
    micro.machine.memory = '512M';
    micro.machine.vcpus = vcpus;
    micro.boot.kernel = kit.vmlinux;
    micro.boot.initramfs = writeInitramfsWithScript(
      kit,
      `${CONSOLE_INPUT_STEP}${script}`,
      join(tmp, `${name}-initrd.gz`),
      { 'bin/guestio': readFileSync(guestTool('guestio')) },
    );
    micro.boot.cmdline = `${String(micro.boot.cmdline)} quiet tsvmm.stdin=console`;
    micro.plugins.push({ name: 'virtio-net', config: netConfig });
    const cfg = join(tmp, `${name}.yaml`);
    writeFileSync(cfg, stringify(micro));
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [join(root, 'bin', 'vmm.js'), 'run', cfg], {
        cwd: tmp,
        env: { ...process.env, VMM_DIST: relative(root, compiled) || 'dist' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const t0 = Date.now();
      let text = '';
      let typed = false;
      // TSVMM_NET_LIVE=1: the VM's console as it comes, prefixed with the VM's name (debugging).
      const live =
        process.env.TSVMM_NET_LIVE === '1'
          ? (s: string) => process.stdout.write(s.replace(/^(?=.)/gm, `[${name}] `))
          : undefined;
      child.stdout.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        live?.(d.toString('latin1'));
        // console input: one line on the VMM's stdin once the guest asks for it
        if (!typed && text.includes('ready-for-input\r\n')) {
          typed = true;
          if (onOutput) child.stdin.write(`${TYPED}\n`);
          else child.stdin.end(`${TYPED}\n`);
        }
        if (typed) onOutput?.(text, child.stdin);
      });
      child.stderr.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        live?.(d.toString('latin1'));
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ out: parseGuestOutput(text), console: text, code, seconds: (Date.now() - t0) / 1000 });
      });
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
        delete o.pairs;
        delete o.time;
        delete o.level;
        console.log(`      vmm ${JSON.stringify(o)}`);
      } catch {
        console.log(`      vmm ${l.slice(0, 1500)}`);
      }
    }
  };

  const report = (r: VmRun): string => `exit ${r.code}\n${r.console.slice(-6000)}`;
  /** What every run must show: the console line typed on stdin came back, the script and the VMM ended with 0. */
  const expectCleanRun = (r: VmRun): void => {
    expect(r.out.initReached, report(r)).to.equal(true);
    expect(r.out.result, report(r)).to.include(`console-input=${TYPED}`);
    expect(r.out.exitCode, report(r)).to.equal(0);
    expect(r.code, report(r)).to.equal(0);
  };

  describe('tap backend', () => {
    let servers: net.Server[] = [];
    before(() => {
      loadTun();
    });
    beforeEach(() => {
      upHostTap(TAP, HOST_IP, 2);
    });
    afterEach(() => {
      for (const s of servers) s.close();
      servers = [];
      removeHostTap(TAP, 2);
    });

    it('the guest pings the host through the tap and moves 64 MiB each way over TCP, checksums equal', async () => {
      // Host side: UP_PORT receives SIZE bytes and hashes them; DOWN_PORT sends SIZE bytes of a pattern.
      let upHash = '';
      let upBytes = 0;
      const upDone = new Promise<void>((res) => {
        const s = net
          .createServer((sock) => {
            const h = createHash('md5');
            let t0 = 0;
            sock.on('data', (d: Buffer) => {
              if (!t0) t0 = Date.now();
              h.update(d);
              upBytes += d.length;
              if (upBytes >= SIZE && !upHash) {
                upHash = h.digest('hex');
                console.log(
                  `      guest -> host: ${SIZE >> 20} MiB in ${((Date.now() - t0) / 1000).toFixed(1)} s (${mbps(SIZE, Date.now() - t0)} MB/s)`,
                );
                sock.end();
                res();
              }
            });
          })
          .listen(UP_PORT, HOST_IP);
        servers.push(s);
      });
      const downHash = createHash('md5');
      const chunks: Buffer[] = [];
      for (let i = 0; i < SIZE / (1 << 20); i++) {
        const ch = xorshiftBytes(i + 1, 1 << 20);
        chunks.push(ch);
        downHash.update(ch);
      }
      const downExpected = downHash.digest('hex');
      // allowHalfOpen: the guest's nc shuts its sending side at once (stdin is /dev/null); without it
      // Node would end the socket on that FIN and drop the rest of the stream.
      servers.push(
        net
          .createServer({ allowHalfOpen: true }, (sock) => {
            const t0 = Date.now();
            sock.on('close', () =>
              console.log(
                `      host -> guest: ${(sock.bytesWritten / 2 ** 20).toFixed(0)} MiB in ${((Date.now() - t0) / 1000).toFixed(1)} s (${mbps(sock.bytesWritten, Date.now() - t0)} MB/s)`,
              ),
            );
            let i = 0;
            const push = (): void => {
              while (i < chunks.length) {
                if (!sock.write(chunks[i++])) {
                  sock.once('drain', push);
                  return;
                }
              }
              sock.end();
            };
            push();
          })
          .listen(DOWN_PORT, HOST_IP),
      );

      const script = `
set -e
ip link set eth0 up
ip addr add ${GUEST_IP}/24 dev eth0
echo "nproc=$(nproc) queues=$(ls /sys/class/net/eth0/queues | tr '\\n' ' ')"
taskset 1 ping -c 3 -W 5 ${HOST_IP} >/tmp/ping.txt && echo PING-OK
head -c ${SIZE} /dev/urandom > /tmp/up
echo "UP-MD5 $(md5sum /tmp/up | cut -d' ' -f1)"
stats() { echo "STAT $1 tx $(cat /sys/class/net/eth0/statistics/tx_packets) $(cat /sys/class/net/eth0/statistics/tx_bytes) rx $(cat /sys/class/net/eth0/statistics/rx_packets) $(cat /sys/class/net/eth0/statistics/rx_bytes) irq $(grep virtio /proc/interrupts | tr -s ' ' | tr '\n' '|') tcp $(grep '^Tcp:' /proc/net/snmp | tail -1 | cut -d' ' -f11-14)" || true; }
stats start
taskset 2 timeout 900 nc ${HOST_IP} ${UP_PORT} < /tmp/up > /dev/null
stats up
rm /tmp/up
taskset 1 timeout 900 nc ${HOST_IP} ${DOWN_PORT} > /tmp/down < /dev/null
stats down
echo "DOWN-SIZE $(wc -c < /tmp/down)"
echo "DOWN-MD5 $(md5sum /tmp/down | cut -d' ' -f1)"
# the control queue: promiscuous mode, a new MAC, then ARP with it (the host learns it)
ip link set eth0 promisc on
echo "promisc=$(( $(cat /sys/class/net/eth0/flags) & 0x100 ))"
ip link set dev eth0 address ${NEW_MAC}
echo "mac=$(cat /sys/class/net/eth0/address)"
ip neigh flush dev eth0
ping -c 2 -W 5 ${HOST_IP} >/dev/null && echo PING-NEWMAC-OK
# the host reads its neighbour table now (the VMM's exit takes the tap's carrier, and the entry, away)
read -t 120 -r ack
echo "host-ack=$ack"
echo "driver-warnings=$(dmesg | grep -i virtio | grep -ci fail)"
`;
      // The guest's driver runs with its defaults (TX NAPI on: sent buffers are freed on TX
      // interrupts, which TCP small queues wait for). Earlier versions booted it with
      // virtio_net.napi_tx=0 because each interrupt then cost two hops to the VMM's main thread
      // (0.2 MB/s upload); see README "Performance".
      let neigh = '';
      const r = await runVm(
        'tap',
        script,
        { mac: '52:54:00:77:00:02', queuePairs: 2, backend: { kind: 'tap', name: TAP } },
        25 * 60_000,
        2,
        (text, stdin) => {
          if (neigh || !text.includes('PING-NEWMAC-OK\r\n')) return;
          neigh = execFileSync('ip', ['neigh', 'show', GUEST_IP, 'dev', TAP], { encoding: 'utf8' }) || '(none)';
          stdin.end('ack\n');
        },
      );
      console.log(`      bin/vmm.js run, boot to poweroff: ${r.seconds.toFixed(1)} s`);
      logStatistics(r);
      expectCleanRun(r);
      expect(r.out.result, report(r)).to.include('PING-OK');
      await Promise.race([upDone, new Promise((res) => setTimeout(res, 1000))]);
      const guestUp = /UP-MD5 ([0-9a-f]{32})/.exec(r.out.result ?? '')?.[1];
      expect(upBytes, report(r)).to.equal(SIZE);
      expect(guestUp, report(r)).to.equal(upHash);
      expect(r.out.result, report(r)).to.include(`DOWN-SIZE ${SIZE}`);
      expect(/DOWN-MD5 ([0-9a-f]{32})/.exec(r.out.result ?? '')?.[1], report(r)).to.equal(downExpected);
      // multi-queue: the driver uses both pairs; senders pinned to each CPU sent on both
      expect(r.out.result, report(r)).to.include('nproc=2 queues=rx-0 rx-1 tx-0 tx-1');
      const stats = netStats(r.console);
      expect(stats, 'the VMM logged its virtio-net statistics').to.not.equal(undefined);
      expect(
        stats!.pairs.map((p) => p.txFrames > 0),
        'TX frames per queue pair',
      ).to.deep.equal([true, true]);
      // the control queue: every command (queue pairs, RX mode, MAC) answered OK
      expect(r.out.result, report(r)).to.include('promisc=256'); // IFF_PROMISC (busybox ip does not name the flag)
      expect(r.out.result, report(r)).to.include(`mac=${NEW_MAC}`);
      expect(r.out.result, report(r)).to.include('PING-NEWMAC-OK');
      expect(r.out.result, report(r)).to.include('driver-warnings=0');
      expect(stats!.ctrl.commands).to.be.greaterThan(2);
      expect(stats!.ctrl.errors).to.equal(0);
      expect(r.out.result, report(r)).to.include('host-ack=ack');
      expect(neigh, 'the host saw frames from the new MAC').to.include(`lladdr ${NEW_MAC}`);
    });
  });

  describe('socket backend (no tap, no privileges needed by the backend)', () => {
    it('two VMs (1 vCPU each) on a unix datagram wire: one sends 4 MiB over TCP to the other, md5 equal', async () => {
      const a = join(tmp, 'a.sock');
      const b = join(tmp, 'b.sock');
      const setup = (me: string): string => `
set -e
ip link set eth0 up
ip addr add ${me}/24 dev eth0
`;
      // the receiver listens, then exits when the sender closes; the sender retries connecting until the
      // receiver listens
      const receiver = `${setup('192.168.78.2')}guestio recv 5700 /tmp/in
echo "IN-MD5 $(md5sum /tmp/in | cut -d' ' -f1)"
`;
      const sender = `${setup('192.168.78.1')}head -c ${SOCKET_BYTES} /dev/urandom > /tmp/out
echo "OUT-MD5 $(md5sum /tmp/out | cut -d' ' -f1)"
guestio send 192.168.78.2 5700 /tmp/out
`;
      const [ra, rb] = await Promise.all([
        runVm(
          'sock-a',
          sender,
          { mac: '52:54:00:78:00:01', backend: { kind: 'socket', unix: { path: a, peer: b } } },
          10 * 60_000,
          1,
        ),
        runVm(
          'sock-b',
          receiver,
          { mac: '52:54:00:78:00:02', backend: { kind: 'socket', unix: { path: b, peer: a } } },
          10 * 60_000,
          1,
        ),
      ]);
      console.log(
        `      two bin/vmm.js runs, boot to poweroff: ${ra.seconds.toFixed(1)} s and ${rb.seconds.toFixed(1)} s`,
      );
      for (const r of [ra, rb]) expectCleanRun(r);
      expect(ra.out.result, report(ra)).to.include(`sent-bytes=${SOCKET_BYTES}`);
      expect(rb.out.result, report(rb)).to.include(`received-bytes=${SOCKET_BYTES}`);
      const sent = /OUT-MD5 ([0-9a-f]{32})/.exec(ra.out.result ?? '')?.[1];
      expect(sent, report(ra)).to.match(/^[0-9a-f]{32}$/);
      expect(/IN-MD5 ([0-9a-f]{32})/.exec(rb.out.result ?? '')?.[1], report(rb)).to.equal(sent);
    });
  });
});
