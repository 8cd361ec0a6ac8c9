import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';
import { benchInitramfs } from './guest/initramfs.js';
import { whyFailed } from './guest/launch.js';
import { runGuest } from './guest/run-guest.js';
import { oursArgv, peerName, qemuBenchArgv, type GuestSpec, type Transport } from './guest/vmms.js';
import { pairedRow } from './rows.js';
import { tool } from './tools.js';
import type { GuestBenchOptions, Row, Where } from './types.js';

const HOST_IP = '172.31.249.1';
const GUEST_IP = '172.31.249.2';
const PORT = 5201;
const MIB = 256;
const SECS = 4;

/** A TCP sink: per connection, MB/s from the first byte to the sender's FIN (then it closes). */
export class Sink {
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

/** The guest script lines of the net benchmark: address eth0, send to the host's sink. */
export const netScript = (): string =>
  `/bin/guestbench ifup eth0 ${GUEST_IP} 255.255.255.0 && /bin/guestbench tcpsend ${HOST_IP} ${PORT} ${MIB} ${SECS}`;

/** The net row's fixed fields for a transport (`net` over virtio-mmio, `net-pci` over virtio-pci). */
export function netRowBase(transport: Transport, where: Where): Row {
  const bench = transport === 'mmio' ? 'net' : `net-${transport}`;
  return {
    id: `${bench}.tcp.guest-to-host`,
    bench,
    label: `Guest -> host TCP throughput over tap (one stream), virtio-${transport}`,
    unit: 'MB/s',
    better: 'higher',
    where,
    peer: `${peerName(transport, 'virtio-net-%')}, tap, vhost=off`,
    notes: `up to ${MIB} MiB or ${SECS} s per run; host-side sink times first byte to FIN`,
  };
}

/**
 * Gives the host end of the tap its address once the VMM created it (guestbench ifup: busybox has no `ip`), however
 * long that takes until `stop()` (the VM's run ended): under load a VMM may create it well after 30 s.
 */
export async function configureTap(tap: string, stop: () => boolean): Promise<boolean> {
  while (!stop()) {
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
 * Node sink on the host end of the tap; the sink times first byte to FIN. Ours = micro (or cloud for `pci`) +
 * virtio-net (tap backend); peer = QEMU microvm virtio-net-device (or q35 virtio-net-pci), tap, vhost=off.
 * Rows: `net.*` over virtio-mmio, `net-pci.*` over virtio-pci.
 */
export async function netBench(o: GuestBenchOptions, transport: Transport = 'mmio'): Promise<Row[]> {
  const base = netRowBase(transport, o.where);
  const bench = base.bench;
  if (!existsSync('/dev/net/tun')) return [{ ...base, na: 'n/a: no /dev/net/tun here' }];
  const oursAvailable = existsSync(join(projectLayout().root, 'plugins', 'virtio-net', 'vmm-plugin.json'));
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-net-'));
  const sink = new Sink();
  const ours: number[] = [],
    peer: number[] = [];
  const problems = { ours: [] as string[], peer: [] as string[] };
  try {
    await sink.listen();
    const initramfs = benchInitramfs(o.kit, dir, 'net', netScript());
    for (let i = 0; i < o.repeats; i++) {
      for (const which of ['qemu', 'ours'] as const) {
        if (which === 'ours' && !oursAvailable) continue;
        const tap = `tbench${transport === 'pci' ? 'p' : ''}${i}${which === 'ours' ? 'o' : 'q'}`;
        const g: GuestSpec = { kit: o.kit, initramfs, memoryMiB: 256, vcpus: 1, dir, tap, transport };
        const argv = which === 'ours' ? oursArgv(g, `${bench}-${i}`) : { argv: qemuBenchArgv(g), env: process.env };
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
        `${bench} ${o.where} repeat ${i + 1}/${o.repeats}: qemu ${peer[i]?.toFixed(1) ?? 'n/a'} MB/s, ours ${ours[i]?.toFixed(1) ?? 'n/a'} MB/s`,
      );
    }
  } finally {
    sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (!oursAvailable) problems.ours.unshift('our virtio-net plugin is not in this tree');
  return [pairedRow(base, ours, peer, problems)];
}
