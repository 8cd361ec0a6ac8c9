/**
 * Linux tier, one boot (issue 16's Kata-like proof): a client drives a cloud-host VM (`vmm serve`'s default host:
 * PCI, virtio-pci, ACPI hotplug) only through the API, as Kata Containers drives Cloud Hypervisor: vm.create (a
 * VmConfig with a boot disk), vm.boot, vm.info (state, config, device_tree with PCI addresses), vm.add-disk (the
 * guest finds a new /dev/vdb of the file's size at the PCI address the API answered, reads the file's bytes and
 * writes a record that reaches the file), vm.counters, vm.pause, vm.snapshot (refused while the hotplugged disk is
 * attached: a snapshot carries the config's devices only), vm.resume (the guest goes on),
 * vm.shutdown, vm.delete, vmm.shutdown; the event monitor heard the device added. Every wait has a deadline and
 * fails with the console's tail and vmm serve's stderr.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { guestScope, repoRoot } from '../guest/guest-vm.js';
import { writeInitramfsWithScript } from '../harness/guest-kit.js';
import { eventNames, startServe, waitForText as waitFor } from './serve-process.js';

const HOT_BYTES = 8 << 20;
const RECORD = 'KATA-GUEST-WROTE-0016';
const RECORD_SECTOR = 100;

const SCRIPT = `
echo "boot-disk=$(cat /sys/block/vda/size 2>/dev/null)"
echo cloud-guest-ready
i=0
while [ ! -e /sys/block/vdb ] && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done
echo "hot-size=$(cat /sys/block/vdb/size 2>/dev/null)"
echo "hot-dev=$(readlink -f /sys/block/vdb/device 2>/dev/null)"
echo "hot-sha=$(dd if=/dev/vdb bs=1M 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo ${RECORD} | dd of=/dev/vdb bs=512 seek=${RECORD_SECTOR} conv=fsync 2>/dev/null && echo hot-write=ok
echo hot-done
i=0
while [ $i -lt 900 ]; do echo "tick=$i"; i=$((i+1)); sleep 1; done
`;

describe('a Kata-like client drives a cloud-host VM through the API only: create, boot, info, add-disk, pause, snapshot, resume, shutdown, delete (linux tier)', function () {
  this.timeout(600_000);
  const g = guestScope('cloud-api-linux');

  it('boots a VmConfig on the cloud host, hotplugs a disk the guest reads and writes, snapshots, shuts down', async () => {
    const { kit, dir } = g;
    const consoleFile = path.join(dir, 'console.log');
    const events = path.join(dir, 'events.jsonl');
    const bootDisk = path.join(dir, 'boot.img');
    fs.writeFileSync(bootDisk, Buffer.alloc(2 << 20, 0x5a));
    const hot = path.join(dir, 'hot.img');
    const hotBytes = randomBytes(HOT_BYTES);
    fs.writeFileSync(hot, hotBytes);
    const hotSha = createHash('sha256').update(hotBytes).digest('hex');
    const cloud = parseYaml(fs.readFileSync(path.join(repoRoot(), 'hosts', 'cloud.yaml'), 'utf8')) as {
      boot: { cmdline: string };
    };
    const vmConfig = {
      payload: {
        kernel: kit.vmlinux,
        initramfs: writeInitramfsWithScript(kit, SCRIPT, path.join(dir, 'cloud-api.initramfs')),
        cmdline: `${cloud.boot.cmdline} quiet`,
      },
      cpus: { boot_vcpus: 1, max_vcpus: 1 },
      memory: { size: 256 * 1024 * 1024 },
      disks: [{ path: bootDisk, readonly: true }],
      serial: { mode: 'File', file: consoleFile },
      console: { mode: 'Off' },
    };

    const t0 = Date.now();
    const serve = await startServe(dir, ['--event-monitor', `path=${events}`], { upMs: 120_000, killAfterMs: 540_000 });
    const { call } = serve;
    const why = (a: { body: unknown }): string => `${JSON.stringify(a.body)}; stderr: ${serve.stderr().slice(-2000)}`;
    try {
      const create = await call('PUT', 'vm.create', vmConfig);
      expect(create.status, why(create)).to.equal(204);
      const boot = await call('PUT', 'vm.boot');
      expect(boot.status, why(boot)).to.equal(204);
      await waitFor(consoleFile, /cloud-guest-ready/, 240_000);
      const bootS = (Date.now() - t0) / 1000;
      expect((await waitFor(consoleFile, /boot-disk=(\d+)/, 1000))[1]).to.equal(String((2 << 20) / 512));

      const info = (await call('GET', 'vm.info')).body as {
        state: string;
        config: unknown;
        device_tree: Record<string, { pci_bdf?: string }>;
      };
      expect(info).to.deep.include({ state: 'Running', config: vmConfig });
      expect(info.device_tree['virtio-pci:disk0']?.pci_bdf, JSON.stringify(info.device_tree)).to.match(
        /^0000:00:[0-9a-f]{2}\.0$/,
      );

      // the disk Kata adds for a container's rootfs: hotplugged over PCI, found by the guest
      const added = await call('PUT', 'vm.add-disk', { path: hot });
      expect(added.status, why(added)).to.equal(200);
      const { id, bdf } = added.body as { id: string; bdf: string };
      expect(id).to.equal('disk1');
      expect(bdf).to.match(/^0000:00:[0-9a-f]{2}\.0$/);
      await waitFor(consoleFile, /hot-done/, 180_000);
      expect((await waitFor(consoleFile, /hot-size=(\d*)/, 1000))[1], 'the new disk has the file size').to.equal(
        String(HOT_BYTES / 512),
      );
      expect((await waitFor(consoleFile, /hot-dev=(\S*)/, 1000))[1], 'at the address the API answered').to.include(
        `/${bdf}/`,
      );
      expect((await waitFor(consoleFile, /hot-sha=(\w*)/, 1000))[1], "the guest reads the file's bytes").to.equal(
        hotSha,
      );
      await waitFor(consoleFile, /hot-write=ok/, 1000);
      const tree = ((await call('GET', 'vm.info')).body as typeof info).device_tree;
      expect(tree[`virtio-pci:${id}`]?.pci_bdf, JSON.stringify(Object.keys(tree))).to.equal(bdf);
      const counters = (await call('GET', 'vm.counters')).body as Record<string, Record<string, number>>;
      const hotCounters = Object.entries(counters).find(([k]) => k.endsWith(`:${id}`))?.[1];
      expect(hotCounters?.readBytes, JSON.stringify(Object.keys(counters))).to.be.at.least(HOT_BYTES);

      expect((await call('PUT', 'vm.pause')).status).to.equal(204);
      expect((await call('GET', 'vm.info')).body).to.deep.include({ state: 'Paused' });
      // a snapshot carries the devices of the VM's config only (plugins/migration): with the hotplugged disk
      // attached it is refused in one line naming it, and nothing is written (api.linux restores a snapshot)
      const snap = path.join(dir, 'snap');
      const snapshot = await call('PUT', 'vm.snapshot', { destination_url: `file://${snap}` });
      expect(snapshot.status, why(snapshot)).to.equal(500);
      expect((snapshot.body as string[])[1], why(snapshot)).to.match(/devices added at run time \(disk1\)/);
      expect(fs.existsSync(path.join(snap, 'manifest.json')), 'no snapshot was written').to.equal(false);
      const lastTick = Number((await waitFor(consoleFile, /tick=(\d+)/, 30_000))[1]);
      expect((await call('PUT', 'vm.resume')).status).to.equal(204);
      const next = Number(
        (await waitFor(consoleFile, new RegExp(`tick=(${lastTick + 1}|${lastTick + 2})\\b`), 120_000))[1],
      );
      expect(next).to.be.greaterThan(lastTick);
      expect((await call('GET', 'vm.info')).body).to.deep.include({ state: 'Running' });

      expect((await call('PUT', 'vm.shutdown')).status).to.equal(204);
      expect((await call('GET', 'vm.info')).body).to.deep.include({ state: 'Shutdown' });
      const written = fs.readFileSync(hot).subarray(RECORD_SECTOR * 512, RECORD_SECTOR * 512 + RECORD.length);
      expect(written.toString('latin1'), "the guest's write reached the file").to.equal(RECORD);
      expect((await call('PUT', 'vm.delete')).status).to.equal(204);
      expect((await call('GET', 'vm.info')).status).to.equal(404);
      expect((await call('PUT', 'vmm.shutdown')).status).to.equal(204);
      expect(await serve.exited, serve.stderr()).to.equal(0);
      const seen = eventNames(events);
      for (const e of ['starting', 'booted', 'device-added', 'paused', 'resumed', 'shutdown'])
        expect(seen, JSON.stringify(seen)).to.include(e);
      console.log(
        `      serve up (first ping): ${serve.pingMs} ms; guest ready: ${bootS.toFixed(1)} s; ` +
          `whole run: ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      serve.stop();
    }
  });
});
