/**
 * Linux tier, one boot: `vmm serve --host micro` as users start it, and a micro-host VM driven only through the API
 * — a Cloud Hypervisor VmConfig (payload, cpus, memory, one disk, serial to a file) created and booted, then ping,
 * info, counters (the guest read its disk: virtio-blk counters moved; kvm's exits), /metrics, pause, snapshot,
 * resume (the guest goes on), hostile requests while it runs (it keeps running), shutdown, delete; vm.restore of
 * the snapshot (paused, then resumed: the guest ticks on from the snapshot's instant), shutdown, delete and
 * vmm.shutdown; the event monitor's lines. The cloud host's flow (hotplug) is test/api/cloud-api.linux.test.ts.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { guestScope, repoRoot } from '../guest/guest-vm.js';
import { writeInitramfsWithScript } from '../harness/guest-kit.js';
import { apiRequest } from '../../hosts/api/client.js';
import { parseRaw, rawExchange } from './harness.js';
import { eventNames, startServe, waitForText as waitFor } from './serve-process.js';

describe('the API drives a micro-host VM: vmm serve, create, boot, ping, info, counters, pause, resume, shutdown (linux tier)', function () {
  this.timeout(600_000);
  const g = guestScope('api-linux');

  it('boots a Cloud Hypervisor VmConfig and drives it through the API only', async () => {
    const { kit, dir } = g;
    const consoleFile = path.join(dir, 'console.log');
    const events = path.join(dir, 'events.jsonl');
    const disk = path.join(dir, 'data.img');
    fs.writeFileSync(disk, Buffer.alloc(4 << 20, 0x5a));
    const script = `
echo "disk-bytes=$(dd if=/dev/vda bs=4096 count=64 2>/dev/null | wc -c)"
echo api-guest-ready
i=0
while [ $i -lt 900 ]; do echo "tick=$i"; i=$((i+1)); sleep 1; done
`;
    const initramfs = writeInitramfsWithScript(kit, script, path.join(dir, 'api.initramfs'));
    const micro = parseYaml(fs.readFileSync(path.join(repoRoot(), 'hosts', 'micro.yaml'), 'utf8')) as {
      boot: { cmdline: string };
    };
    const vmConfig = {
      payload: { kernel: kit.vmlinux, initramfs, cmdline: `${micro.boot.cmdline} quiet` },
      cpus: { boot_vcpus: 1, max_vcpus: 1 },
      memory: { size: 256 * 1024 * 1024 },
      disks: [{ path: disk, readonly: true }],
      serial: { mode: 'File', file: consoleFile },
      console: { mode: 'Off' },
    };

    const t0 = Date.now();
    const serve = await startServe(dir, ['--host', 'micro', '--event-monitor', `path=${events}`], {
      upMs: 120_000,
      killAfterMs: 540_000,
    });
    const { call, child, socket } = serve;
    const stderr = (): string => serve.stderr();
    try {
      const pingMs = serve.pingMs;
      expect((await call('PUT', 'vm.create', vmConfig)).status, stderr()).to.equal(204);
      const boot = await call('PUT', 'vm.boot');
      expect(boot.status, `${JSON.stringify(boot.body)} ${stderr()}`).to.equal(204);
      await waitFor(consoleFile, /api-guest-ready/, 240_000);
      const bootS = (Date.now() - t0) / 1000;
      expect((await waitFor(consoleFile, /disk-bytes=(\d+)/, 1000))[1]).to.equal(String(64 * 4096));

      expect((await call('GET', 'vmm.ping')).body).to.include({ pid: child.pid });
      const info = await call('GET', 'vm.info');
      expect(info.body).to.deep.include({ state: 'Running', config: vmConfig });
      const counters = (await call('GET', 'vm.counters')).body as Record<string, Record<string, number>>;
      const blk = counters['virtio-mmio:disk0'];
      expect(blk, JSON.stringify(counters)).to.not.equal(undefined);
      expect(blk.readBytes).to.be.at.least(64 * 4096);
      expect(blk['transport.interrupts']).to.be.greaterThan(0);
      expect(counters.serial?.txBytes, JSON.stringify(Object.keys(counters))).to.be.greaterThan(0);
      expect(counters.kvm?.['exits.io'], 'the kvm plugin counts exits by kind').to.be.greaterThan(0);
      const metrics = (await apiRequest(socket, 'GET', '/metrics')).body as string;
      expect(metrics).to.match(/tsvmm_device_read_bytes_total\{device="virtio-mmio:disk0"\} \d+/);

      expect((await call('PUT', 'vm.pause')).status).to.equal(204);
      expect((await call('GET', 'vm.info')).body).to.deep.include({ state: 'Paused' });
      // hostile requests while the guest is paused and running: clear 4xx, the VM is unharmed
      const bad = parseRaw(
        await rawExchange(socket, [
          'PUT /api/v1/vm.create HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{"payload',
        ]),
      );
      expect(bad.status).to.equal(400);
      const dots = parseRaw(
        await rawExchange(socket, ['GET /api/v1/../vm.info HTTP/1.1\r\nConnection: close\r\n\r\n']),
      );
      expect(dots.status).to.equal(400);
      const snap = path.join(dir, 'snap');
      expect((await call('PUT', 'vm.snapshot', { destination_url: `file://${snap}` })).status).to.equal(204);
      expect(fs.existsSync(path.join(snap, 'manifest.json')), 'the snapshot is complete').to.equal(true);
      const lastTick = Number((await waitFor(consoleFile, /tick=(\d+)/, 1000))[1]);
      expect((await call('PUT', 'vm.resume')).status).to.equal(204);
      const next = await waitFor(consoleFile, new RegExp(`tick=(${lastTick + 1}|${lastTick + 2})\\b`), 120_000);
      expect(Number(next[1])).to.be.greaterThan(lastTick);
      expect((await call('GET', 'vm.info')).body).to.deep.include({ state: 'Running' });

      expect((await call('PUT', 'vm.shutdown')).status).to.equal(204);
      expect((await call('GET', 'vm.info')).body).to.deep.include({ state: 'Shutdown' });
      expect((await call('PUT', 'vm.delete')).status).to.equal(204);
      expect((await call('GET', 'vm.info')).status).to.equal(404);

      // vm.restore of the snapshot: paused, then resumed, the guest ticks on from the snapshot's instant
      const mark = fs.statSync(consoleFile).size;
      const restore = await call('PUT', 'vm.restore', { source_url: `file://${snap}` });
      expect(restore.status, `${JSON.stringify(restore.body)} ${stderr().slice(-2000)}`).to.equal(204);
      expect((await call('GET', 'vm.info')).body).to.deep.include({ state: 'Paused' });
      expect((await call('PUT', 'vm.resume')).status).to.equal(204);
      const again = Number((await waitFor(consoleFile, /tick=(\d+)/, 120_000, mark))[1]);
      expect(again, 'the restored guest goes on from the snapshot').to.be.within(lastTick + 1, lastTick + 30);
      expect(fs.readFileSync(consoleFile, 'latin1').slice(mark), 'not a new boot').to.not.include('api-guest-ready');
      expect((await call('PUT', 'vm.shutdown')).status).to.equal(204);
      expect((await call('PUT', 'vm.delete')).status).to.equal(204);

      expect((await call('PUT', 'vmm.shutdown')).status).to.equal(204);
      expect(await serve.exited, stderr()).to.equal(0);
      const seen = eventNames(events);
      expect(seen.slice(0, 5)).to.deep.equal(['starting', 'booted', 'paused', 'resumed', 'shutdown']);
      expect(seen.slice(5), 'restored: paused, resumed, shutdown; then the VMM').to.include.members([
        'paused',
        'resumed',
      ]);
      expect(seen.slice(-2)).to.deep.equal(['shutdown', 'shutdown']);
      console.log(
        `      serve up (first ping): ${pingMs} ms; guest ready: ${bootS.toFixed(1)} s; ` +
          `whole run: ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      serve.stop();
    }
  });
});
