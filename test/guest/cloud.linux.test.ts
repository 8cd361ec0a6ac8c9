/**
 * Linux tier, ONE boot of the cloud host (hosts/cloud.yaml: PCI, virtio-pci, ACPI power button and PCI hotplug;
 * issue 13's proof), in this process so the test can add and remove devices while the guest runs:
 *  - the PCI listing (/sys/bus/pci/devices, as `lspci -nn`): host bridge, 1af4:1041 net, 1af4:1042 blk;
 *  - /proc/interrupts: PCI-MSIX vectors of the virtio queues, their counts grow under I/O;
 *  - the boot disk (qcow2 made by qemu-img from known bytes): sha256 in the guest equals the host's; a pattern
 *    the guest writes is in the image afterwards, and `qemu-img check` is clean;
 *  - 64 MiB of TCP each way over the tap, checksums equal;
 *  - hotplug: a virtio-blk disk added (a new /dev/vdb with its serial and size, read and written) and removed
 *    after the guest ejected it (gone, the guest goes on); the same for a NIC (a new interface with its MAC);
 *  - SIGTERM to this process (the VMM) presses the power button: the guest kit's /init prints its marker from
 *    its shutdown path and powers off; runVm reports SIGTERM.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runVm, type RunResult } from '../../core/vmm/run.js';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { guestTool, writeInitramfsWithScript } from '../harness/guest-kit.js';
import { guestScope, repoRoot } from './guest-vm.js';
import { PCI_GUEST_SCRIPT, pciGuestProblems } from '../../plugins/pci/guest-checks.js';
import { loadTun, removeHostTap, upHostTap, xorshiftBytes } from '../harness/host-net.js';

const TAP = 'tsvmmcl0';
const HOST_IP = '192.168.78.1';
const GUEST_IP = '192.168.78.2';
const SIZE = 64 << 20;
const UP_PORT = 5611;
const DOWN_PORT = 5612;
const KNOWN = 4 << 20; // known bytes at the start of the boot disk
const PATTERN = 'TSVMM-CLOUD-PATTERN-7f3a9c';
const PATTERN_AT = 8 << 20;
const HOT_SERIAL = 'hot-disk-1';
const HOT_SECTORS = 65536; // 32 MiB
const HOT_MAC = '52:54:00:78:00:09';
const EJECT_MS = 180_000;

/** Sum of the per-CPU counts of each PCI-MSIX line of /proc/interrupts, by its name (last column). */
function msixCounts(lines: string[], cpus: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    if (!f.some((x) => x.startsWith('PCI-MSI'))) continue; // 6.1 names MSI-X vectors PCI-MSI too
    m.set(
      f[f.length - 1],
      f.slice(1, 1 + cpus).reduce((s, n) => s + Number(n), 0),
    );
  }
  return m;
}

const SCRIPT = `
step() { echo "STEP $1"; read -r ack; echo "ack-$1=$ack"; }
waitfor() { i=0; while ! eval "$1" && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done; eval "$1"; }
pci() { for d in /sys/bus/pci/devices/*; do
  echo "PCI $1 \${d##*/} [$(sed s/0x// $d/vendor):$(sed s/0x// $d/device)] class=$(cat $d/class)"; done; }
irqs() { grep PCI-MSI /proc/interrupts | sed "s/^/IRQ-$1 /"; }
for d in /sys/bus/pci/devices/*; do [ -d $d/msi_irqs ] && echo "MSIMODE \${d##*/} $(cat $d/msi_irqs/* | sort -u | tr '\n' ' ')"; done
pci boot
${PCI_GUEST_SCRIPT}
irqs before
echo "disk-sha=$(dd if=/dev/vda bs=1M count=${KNOWN >> 20} 2>/dev/null | sha256sum | cut -d' ' -f1)"
printf '${PATTERN}' > /tmp/pat
dd if=/tmp/pat of=/dev/vda bs=512 seek=${PATTERN_AT / 512} conv=fsync,notrunc 2>/dev/null && echo disk-write=ok
ip link set eth0 up
ip addr add ${GUEST_IP}/24 dev eth0
ping -c 3 -W 5 ${HOST_IP} >/dev/null && echo PING-OK
head -c ${SIZE} /dev/urandom > /tmp/up
echo "UP-MD5 $(md5sum /tmp/up | cut -d' ' -f1)"
timeout 900 nc ${HOST_IP} ${UP_PORT} < /tmp/up > /dev/null
rm /tmp/up
timeout 900 nc ${HOST_IP} ${DOWN_PORT} > /tmp/down < /dev/null
echo "DOWN-SIZE $(wc -c < /tmp/down)"
echo "DOWN-MD5 $(md5sum /tmp/down | cut -d' ' -f1)"
rm /tmp/down
irqs after
step add-disk
waitfor '[ -e /sys/block/vdb ]' && echo hot-disk=present
echo "hot-serial=$(cat /sys/block/vdb/serial 2>/dev/null)"
echo "hot-size=$(cat /sys/block/vdb/size 2>/dev/null)"
echo "hot-head=$(dd if=/dev/vdb bs=512 count=1 2>/dev/null | head -c 16)"
echo HOT-WRITTEN-0042 | dd of=/dev/vdb bs=512 seek=100 conv=fsync 2>/dev/null
echo "hot-readback=$(dd if=/dev/vdb bs=512 skip=100 count=1 iflag=direct 2>/dev/null | head -c 16)"
pci hot
step remove-disk
waitfor '[ ! -e /sys/block/vdb ]' && echo hot-disk=gone
step add-nic
waitfor 'grep -qs ${HOT_MAC} /sys/class/net/*/address' && echo hot-nic=present
echo "hot-nic-pci=$(grep -l ${HOT_MAC} /sys/class/net/*/address | cut -d/ -f5)"
step remove-nic
waitfor '! grep -qs ${HOT_MAC} /sys/class/net/*/address' && echo hot-nic=gone
echo "still-running=$(cat /proc/uptime | cut -d' ' -f1)"
echo ready-for-sigterm
sleep 900
echo sigterm-did-not-come
`;

describe('the cloud host: PCI, virtio-pci, hotplug and the power button in one boot (linux tier)', function () {
  this.timeout(1_500_000);
  const g = guestScope('cloud-linux');
  let servers: net.Server[] = [];
  before(() => {
    loadTun();
    upHostTap(TAP, HOST_IP);
  });
  after(() => {
    for (const s of servers) s.close();
    servers = [];
    removeHostTap(TAP);
  });

  it('lists its PCI functions, uses MSI-X, keeps disk data, moves TCP, hotplugs, shuts down on SIGTERM', async () => {
    const { kit, dir } = g;
    // the boot disk: known bytes, made qcow2 by qemu-img
    const known = xorshiftBytes(0xc10d, KNOWN);
    const raw = path.join(dir, 'known.raw');
    fs.writeFileSync(raw, Buffer.concat([known, Buffer.alloc((64 << 20) - KNOWN)]));
    const disk = path.join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, disk]);
    fs.rmSync(raw);
    const hot = path.join(dir, 'hot.img');
    fs.writeFileSync(hot, Buffer.alloc(HOT_SECTORS * 512));
    const fd = fs.openSync(hot, 'r+');
    fs.writeSync(fd, Buffer.from('HOT-DISK-HEAD-01'), 0, 16, 0);
    fs.closeSync(fd);

    // host ends of the TCP streams
    let upHash = '';
    let upBytes = 0;
    const up = createHash('md5');
    servers.push(
      net
        .createServer((sock) =>
          sock.on('data', (d: Buffer) => {
            up.update(d);
            upBytes += d.length;
            if (upBytes >= SIZE && !upHash) {
              upHash = up.digest('hex');
              sock.end();
            }
          }),
        )
        .listen(UP_PORT, HOST_IP),
    );
    const down = xorshiftBytes(0xd0e5, SIZE);
    const downMd5 = createHash('md5').update(down).digest('hex');
    servers.push(net.createServer({ allowHalfOpen: true }, (sock) => sock.end(down)).listen(DOWN_PORT, HOST_IP));

    const cfg = parseYaml(fs.readFileSync(path.join(repoRoot(), 'hosts', 'cloud.yaml'), 'utf8')) as {
      boot: Record<string, unknown>;
      plugins: { name: string; id?: string; config?: Record<string, unknown> }[];
    };
    const sock = path.join(dir, 'console.sock');
    cfg.boot.kernel = kit.vmlinux;
    cfg.boot.initramfs = writeInitramfsWithScript(kit, SCRIPT, path.join(dir, 'cloud.initramfs'), {
      'bin/guestio': fs.readFileSync(guestTool('guestio')),
    });
    cfg.boot.cmdline = `${String(cfg.boot.cmdline)} quiet tsvmm.stdin=console`;
    for (const p of cfg.plugins) {
      if (p.name === 'serial') p.config = { port: 'COM1', console: { kind: 'unix-socket', path: sock } };
      if (p.id === 'disk0') p.config = { ...p.config, path: disk };
      if (p.id === 'net0') p.config = { ...p.config, backend: { kind: 'tap', name: TAP } };
    }

    let seen = '';
    let vm: AssembledVm | undefined;
    let client: net.Socket | undefined;
    const done = new Set<string>();
    const actions: Record<string, (v: AssembledVm) => Promise<unknown>> = {
      'add-disk': (v) => v.addDevice({ name: 'virtio-blk', id: 'hotdisk', config: { path: hot, serial: HOT_SERIAL } }),
      'remove-disk': (v) => v.removeDevice('hotdisk', { timeoutMs: EJECT_MS }),
      'add-nic': (v) =>
        v.addDevice({
          name: 'virtio-net',
          id: 'hotnic',
          config: {
            mac: HOT_MAC,
            backend: { kind: 'socket', unix: { path: path.join(dir, 'n.sock'), peer: path.join(dir, 'p.sock') } },
          },
        }),
      'remove-nic': (v) => v.removeDevice('hotnic', { timeoutMs: EJECT_MS }),
    };
    const react = (): void => {
      // whole lines only: a console chunk can end inside "STEP remove-disk" (`$` would match "STEP remove-d")
      for (const m of seen.matchAll(/^STEP (\S+)\r?\n/gm)) {
        const step = m[1];
        if (done.has(step)) continue;
        done.add(step);
        const act = actions[step];
        void (act ? act(vm!) : Promise.resolve()).then(
          () => client!.write('ok\n'),
          (err: Error) => client!.write(`failed ${err.message.replace(/\s+/g, ' ').slice(0, 200)}\n`),
        );
      }
      if (!done.has('sigterm') && /^ready-for-sigterm\r?$/m.test(seen)) {
        done.add('sigterm');
        process.kill(process.pid, 'SIGTERM');
      }
    };
    const t0 = Date.now();
    const r: RunResult = await runVm(
      { config: cfg, baseDir: dir },
      {
        onStarted: (v) => {
          vm = v;
          client = net.connect(sock);
          client.on('data', (d: Buffer) => {
            seen += d.toString('latin1');
            react();
          });
          client.on('error', () => {});
        },
      },
    );
    if (client && !client.destroyed) {
      await new Promise<void>((res) => {
        const t = setTimeout(res, 15_000);
        client!.once('close', () => {
          clearTimeout(t);
          res();
        });
      });
      client.destroy();
    }
    const seconds = (Date.now() - t0) / 1000;
    const tail = `reason ${JSON.stringify(r.reason)}; console tail:\n${seen.slice(-5000)}`;
    console.log(`      one boot of the cloud host, to poweroff: ${seconds.toFixed(1)} s`);
    const lines = seen.split('\n').map((l) => l.replace(/\r$/, ''));
    const kv = new Map<string, string>();
    for (const l of lines) {
      const i = l.indexOf('=');
      if (i > 0 && /^[a-z][a-z0-9:.-]*$/.test(l.slice(0, i))) kv.set(l.slice(0, i), l.slice(i + 1));
    }
    for (const l of lines.filter((x) => /^(PCI|IRQ-|MSIMODE)/.test(x))) console.log(`      ${l}`);

    // PCI listing
    const boot = lines.filter((l) => l.startsWith('PCI boot '));
    expect(
      boot.some((l) => / 0000:00:00\.0 \[8086:0d57\] class=0x0600/.test(l)),
      tail,
    ).to.equal(true);
    expect(
      boot.filter((l) => /\[1af4:1041\] class=0x0200/.test(l)),
      tail,
    ).to.have.length(1);
    expect(
      boot.filter((l) => /\[1af4:1042\] class=0x0100/.test(l)),
      tail,
    ).to.have.length(1);
    // MSI-X vectors that grew under I/O
    const before = msixCounts(
      lines.filter((l) => l.startsWith('IRQ-before ')).map((l) => l.slice(11)),
      2,
    );
    const after = msixCounts(
      lines.filter((l) => l.startsWith('IRQ-after ')).map((l) => l.slice(10)),
      2,
    );
    const grew = [...after].filter(([name, n]) => n > (before.get(name) ?? 0)).map(([name]) => name);
    expect(after.size, tail).to.be.greaterThan(2);
    const modes = lines.filter((l) => l.startsWith('MSIMODE '));
    expect(modes, tail).to.have.length(2);
    for (const m of modes) expect(m.trim(), tail).to.match(/ msix$/);
    expect(
      grew.some((n) => /input|output/.test(n)),
      `net queues grew: ${grew}`,
    ).to.equal(true);
    expect(
      grew.some((n) => /req/.test(n)),
      `blk queue grew: ${grew}`,
    ).to.equal(true);
    // the boot disk
    expect(kv.get('disk-sha'), tail).to.equal(createHash('sha256').update(known).digest('hex'));
    expect(kv.get('disk-write'), tail).to.equal('ok');
    // TCP
    expect(seen, tail).to.include('PING-OK');
    expect(upBytes, tail).to.equal(SIZE);
    expect(/UP-MD5 ([0-9a-f]{32})/.exec(seen)?.[1], tail).to.equal(upHash);
    expect(seen, tail).to.include(`DOWN-SIZE ${SIZE}`);
    expect(/DOWN-MD5 ([0-9a-f]{32})/.exec(seen)?.[1], tail).to.equal(downMd5);
    // hotplug
    for (const step of ['add-disk', 'remove-disk', 'add-nic', 'remove-nic'])
      expect(kv.get(`ack-${step}`), tail).to.equal('ok');
    expect(kv.get('hot-disk'), tail).to.equal('gone');
    expect(lines, tail).to.include('hot-disk=present');
    expect(kv.get('hot-serial'), tail).to.equal(HOT_SERIAL);
    expect(kv.get('hot-size'), tail).to.equal(String(HOT_SECTORS));
    expect(kv.get('hot-head'), tail).to.equal('HOT-DISK-HEAD-01');
    expect(kv.get('hot-readback'), tail).to.equal('HOT-WRITTEN-0042');
    expect(
      lines.filter((l) => l.startsWith('PCI hot ') && /\[1af4:1042\]/.test(l)),
      tail,
    ).to.have.length(2);
    expect(lines, tail).to.include('hot-nic=present');
    expect(kv.get('hot-nic'), tail).to.equal('gone');
    expect(kv.get('still-running'), tail).to.match(/^\d+\.\d+$/);
    // SIGTERM: the guest's own shutdown
    expect(
      lines.map((l) => l.trim()),
      tail,
    ).to.include('TSVMM-POWER-BUTTON');
    expect(seen).to.not.include('sigterm-did-not-come');
    expect(r.reason, tail).to.deep.equal({ kind: 'signal', signal: 'SIGTERM' });
    expect(r.exitCode).to.equal(143);
    // the host's files
    const hotBytes = fs.readFileSync(hot);
    expect(hotBytes.subarray(100 * 512, 100 * 512 + 16).toString()).to.equal('HOT-WRITTEN-0042');
    execFileSync('qemu-img', ['check', disk]); // exits non-zero on any corruption or leak
    const back = path.join(dir, 'back.raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', disk, back]);
    const img = fs.readFileSync(back);
    expect(img.subarray(0, KNOWN).equals(known)).to.equal(true);
    expect(img.subarray(PATTERN_AT, PATTERN_AT + PATTERN.length).toString()).to.equal(PATTERN);
    // the pci plugin's guest checks (host bridge, ids, MCFG accepted, no resource problems at boot)
    const functions = { '0000:00:01.0': '0x1af4:0x1042', '0000:00:02.0': '0x1af4:0x1041' };
    expect(pciGuestProblems(kv, functions), tail).to.deep.equal([]);
  });
});
