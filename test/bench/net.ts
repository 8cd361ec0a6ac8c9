import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';
import { benchInitramfs } from './guest/initramfs.js';
import { whyFailed } from './guest/launch.js';
import { runGuest } from './guest/run-guest.js';
import { oursArgv, qemuBenchArgv, type GuestSpec } from './guest/vmms.js';
import { pairedRatios, summarize } from './stats.js';
import { tool } from './tools.js';
import type { GuestBenchOptions, Row } from './types.js';

const HOST_IP = '172.31.249.1';
const GUEST_IP = '172.31.249.2';
const PORT = 5201;
const MIB = 256;
const SECS = 4;

/** A TCP sink: per connection, MB/s from the first byte to the sender's FIN (then it closes). */
class Sink {
  readonly results: number[] = [];
  private server?: Server;
  async listen(): Promise<void> {
    this.server = createServer((s) => {
      let bytes = 0,
        t0 = 0;
      s.on('data', (d) => {
        if (!t0) t0 = performance.now();
        bytes += d.length;
      });
      s.on('end', () => {
        const t = (performance.now() - t0) / 1000;
        if (t0 && t > 0) this.results.push(bytes / 1e6 / t);
        s.end();
      });
      s.on('error', () => s.destroy());
    });
    await new Promise<void>((res, rej) => {
      this.server!.once('error', rej);
      this.server!.listen(PORT, '0.0.0.0', res);
    });
  }
  close(): void {
    this.server?.close();
  }
}

/** Gives the host end of the tap its address once the VMM created it (guestbench ifup: busybox has no `ip`). */
async function configureTap(tap: string, stop: () => boolean): Promise<boolean> {
  for (let i = 0; i < 600 && !stop(); i++) {
    if (existsSync(`/sys/class/net/${tap}`)) {
      const r = spawnSync(tool('guestbench'), ['ifup', tap, HOST_IP, '255.255.255.0'], { encoding: 'utf8' });
      return r.status === 0;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/**
 * Guest -> host TCP throughput over a tap: guestbench sends up to 256 MiB (or 4 s) of zeros to a
 * Node sink on the host end of the tap; the sink times first byte to FIN. Ours = micro +
 * virtio-net (tap backend); peer = QEMU microvm virtio-net-device, tap, vhost=off.
 */
export async function netBench(o: GuestBenchOptions): Promise<Row[]> {
  const base: Row = {
    id: 'net.tcp.guest-to-host',
    bench: 'net',
    label: 'Guest -> host TCP throughput over tap (one stream)',
    unit: 'MB/s',
    better: 'higher',
    where: o.where,
    peer: 'QEMU microvm virtio-net-device, tap, vhost=off',
    notes: `up to ${MIB} MiB or ${SECS} s per run; host-side sink times first byte to FIN`,
  };
  if (!existsSync('/dev/net/tun')) return [{ ...base, na: 'n/a: no /dev/net/tun here' }];
  const oursAvailable = existsSync(join(projectLayout().root, 'plugins', 'virtio-net', 'vmm-plugin.json'));
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-net-'));
  const sink = new Sink();
  const ours: number[] = [],
    peer: number[] = [];
  const problems = { ours: [] as string[], peer: [] as string[] };
  try {
    await sink.listen();
    const script = `/bin/guestbench ifup eth0 ${GUEST_IP} 255.255.255.0 && /bin/guestbench tcpsend ${HOST_IP} ${PORT} ${MIB} ${SECS}`;
    const initramfs = benchInitramfs(o.kit, dir, 'net', script);
    for (let i = 0; i < o.repeats; i++) {
      for (const which of ['qemu', 'ours'] as const) {
        if (which === 'ours' && !oursAvailable) continue;
        const tap = `tbench${i}${which === 'ours' ? 'o' : 'q'}`;
        const g: GuestSpec = { kit: o.kit, initramfs, memoryMiB: 256, vcpus: 1, dir, tap };
        const argv = which === 'ours' ? oursArgv(g, `net-${i}`) : { argv: qemuBenchArgv(g), env: process.env };
        const before = sink.results.length;
        let ended = false;
        const run = runGuest(argv.argv, { env: argv.env, timeoutMs: 300_000 });
        const tapOk = configureTap(tap, () => ended);
        const r = await run;
        ended = true;
        const ok = await tapOk;
        const got = sink.results.length > before ? sink.results[sink.results.length - 1] : undefined;
        if (got !== undefined && r.finished) (which === 'ours' ? ours : peer)[i] = got;
        else
          (which === 'ours' ? problems.ours : problems.peer).push(
            `${ok ? '' : 'tap never configured; '}${r.problem ?? 'no transfer'}: ${whyFailed(r.l).slice(0, 400)}`,
          );
      }
      o.log(
        `net ${o.where} repeat ${i + 1}/${o.repeats}: qemu ${peer[i]?.toFixed(1) ?? 'n/a'} MB/s, ours ${ours[i]?.toFixed(1) ?? 'n/a'} MB/s`,
      );
    }
  } finally {
    sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const a: number[] = [],
    b: number[] = [];
  for (let i = 0; i < o.repeats; i++)
    if (ours[i] !== undefined && peer[i] !== undefined) {
      a.push(ours[i]);
      b.push(peer[i]);
    }
  if (a.length === 0) {
    const why = !oursAvailable
      ? 'our virtio-net plugin is not in this tree yet'
      : problems.ours.length
        ? `ours: ${problems.ours[0]}`
        : `peer: ${problems.peer[0] ?? 'no figure'}`;
    return [{ ...base, peerSummary: summarize(peer.filter((x) => x !== undefined)), na: `n/a: ${why}` }];
  }
  return [{ ...base, ours: summarize(a), peerSummary: summarize(b), ratio: summarize(pairedRatios(a, b)) }];
}
