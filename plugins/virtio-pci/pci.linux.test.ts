/**
 * Linux tier: ONE boot of the guest kit's Debian kernel in a micro-like VM whose virtio devices sit on PCI
 * (plugins pci + virtio-pci, the VM default transport pci, no `pci=off`), driven by the kernel's own virtio_pci driver
 * with MSI-X: a raw disk, a qcow2 disk and a virtio-net interface on a tap, 2 vCPUs (virtio-mmio is not listed: its
 * `virtio_mmio.device=` word makes the kit's insmod log "ignored", which the PCI dmesg check counts). The guest checks
 * and prints, the host checks afterwards:
 *  1. the functions enumerate as 1af4:1042 (blk) x2 and 1af4:1041 (net) at 00:01.0..00:03.0, next to the host
 *     bridge, MCFG accepted and no PCI resource problem in dmesg (the pci plugin's PCI_GUEST_SCRIPT checks);
 *  2. both disks read back with the sha256 of their known content, and a pattern the guest writes (dd, fsync)
 *     is in the host files (the qcow2 image read through `qemu-img convert`; `qemu-img check` clean);
 *  3. 64 MiB of TCP each way over the tap, md5 equal on both sides;
 *  4. /proc/interrupts: PCI-MSIX lines for the virtio queues (config, req, input, output), whose counts grow
 *     under the I/O of 2 and 3.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { guestKit, type GuestKit } from '../../test/harness/guest-kit.js';
import { endedWithin, guestResult, microConfig, spawnVmm, type PluginEntry } from '../../test/guest/guest-vm.js';
import { parseGuestOutput } from '../../test/harness/guest-kit.js';
import { skipUnlessCi } from '../../test/setup/environment.js';
import { PCI_GUEST_SCRIPT, pciGuestProblems } from '../pci/guest-checks.js';
import { loadTun, removeHostTap, upHostTap, xorshiftBytes } from '../../test/harness/host-net.js';

const MiB = 1 << 20;
const DISK = 8 * MiB;
const NET_BYTES = 64 * MiB;
const TAP = 'tsvmmpci0';
const HOST_IP = '192.168.79.1';
const GUEST_IP = '192.168.79.2';
const UP_PORT = 5611;
const DOWN_PORT = 5612;
/** Where the guest writes its pattern on each disk (bytes). */
const PATTERN_AT = 5 * MiB;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function which(tool: string): string | undefined {
  for (const d of ['/usr/bin', '/bin', '/usr/sbin', '/sbin'])
    if (fs.existsSync(path.join(d, tool))) return path.join(d, tool);
  return undefined;
}

/** The guest's job; every result is a key=value line (the pci plugin's bus checks first). */
const SCRIPT = `${PCI_GUEST_SCRIPT}
set -e
irqs() { grep -E 'virtio[0-9]+' /proc/interrupts | while read -r n a b chip rest; do
  echo "irq-$1-\${rest##* }=$((a + b)) $chip"; done; true; }
echo "t-start=$(cut -d' ' -f1 /proc/uptime)"
echo "nproc=$(nproc)"
echo "pci=$(for d in /sys/bus/pci/devices/*; do echo "$(cat $d/vendor):$(cat $d/device)"; done | sort | tr '\\n' ' ')"
for b in /sys/block/vd*; do echo "disk-$(cat $b/serial)=\${b##*/} $(cat $b/size)"; done
irqs boot
for d in /sys/bus/pci/devices/*; do echo "msi-\${d##*/}=$(ls $d/msi_irqs 2>/dev/null | tr '\\n' ' ') irq $(cat $d/irq)"; done
grep -i virtio /proc/interrupts | sed 's/^/intr: /'
dmesg | grep -iE 'virtio|msi|1af4' | sed 's/^/dmesg: /'
dev() { for b in /sys/block/vd*; do if [ "$(cat $b/serial)" = "$1" ]; then echo /dev/\${b##*/}; fi; done; }
R=$(dev pci-raw); Q=$(dev pci-qcow2)
echo "sha-raw=$(dd if=$R bs=1M iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "sha-qcow2=$(dd if=$Q bs=1M iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
printf 'TSVMM-PCI-PATTERN-raw' | dd of=$R bs=512 seek=${PATTERN_AT / 512} conv=fsync 2>/dev/null
printf 'TSVMM-PCI-PATTERN-qcow2' | dd of=$Q bs=512 seek=${PATTERN_AT / 512} conv=fsync 2>/dev/null
echo "t-disks=$(cut -d' ' -f1 /proc/uptime)"
ip link set eth0 up
ip addr add ${GUEST_IP}/24 dev eth0
ping -c 2 -W 5 ${HOST_IP} >/dev/null && echo ping=ok
head -c ${NET_BYTES} /dev/urandom > /tmp/up
echo "up-md5=$(md5sum /tmp/up | cut -d' ' -f1)"
timeout 600 nc ${HOST_IP} ${UP_PORT} < /tmp/up > /dev/null
rm /tmp/up
timeout 600 nc ${HOST_IP} ${DOWN_PORT} > /tmp/down < /dev/null
echo "down-size=$(wc -c < /tmp/down)"
echo "down-md5=$(md5sum /tmp/down | cut -d' ' -f1)"
rm /tmp/down
echo "t-net=$(cut -d' ' -f1 /proc/uptime)"
irqs io
echo "msix-warnings=$(dmesg | grep -ci 'virtio.*\\(fail\\|error\\)' || true)"
echo done=1
`;

describe('virtio-pci on Linux: virtio-blk (raw, qcow2) and virtio-net over PCI with MSI-X (one boot)', function () {
  this.timeout(800_000); // the VMM's deadline below is 600 s; the runner's watchdog 900 s
  let kit: GuestKit;
  let dir: string;
  let qemuImg: string;
  const raw = { file: '', content: Buffer.alloc(0) };
  const qcow = { file: '', content: Buffer.alloc(0) };
  let result: Map<string, string>;
  let report = '';
  let upHash = '';
  const servers: net.Server[] = [];

  before(async function () {
    if (!process.env.TSVMM_LINUX && !process.env.TSVMM_GUESTKIT_DIR) {
      skipUnlessCi(
        this,
        'Linux does not boot here (the tier runner sets TSVMM_GUESTKIT_DIR or TSVMM_LINUX where it does)',
      );
    }
    const q = which('qemu-img');
    if (!q) skipUnlessCi(this, "qemu-img is not installed (Debian qemu-utils; the sandbox carries the host's)");
    if (!fs.existsSync('/dev/net/tun') || process.getuid?.() !== 0) skipUnlessCi(this, 'needs /dev/net/tun and root');
    qemuImg = q!;
    kit = await guestKit({ log: () => {} });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpci-linux-'));
    raw.file = path.join(dir, 'raw.img');
    raw.content = randomBytes(DISK);
    fs.writeFileSync(raw.file, raw.content);
    qcow.file = path.join(dir, 'disk.qcow2');
    qcow.content = randomBytes(DISK);
    const src = path.join(dir, 'qcow-src.raw');
    fs.writeFileSync(src, qcow.content);
    execFileSync(qemuImg, ['convert', '-q', '-f', 'raw', '-O', 'qcow2', src, qcow.file], { timeout: 120_000 });
    fs.rmSync(src);
    loadTun();
    upHostTap(TAP, HOST_IP);
  });
  after(() => {
    for (const s of servers) s.close();
    removeHostTap(TAP);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Host end of the TCP streams: UP hashes what the guest sends, DOWN sends NET_BYTES of a pattern. */
  function serve(): { downMd5: string } {
    servers.push(
      net
        .createServer((sock) => {
          const h = createHash('md5');
          let n = 0;
          sock.on('data', (d: Buffer) => {
            h.update(d);
            n += d.length;
            if (n >= NET_BYTES && !upHash) upHash = h.digest('hex');
          });
        })
        .listen(UP_PORT, HOST_IP),
    );
    const down = xorshiftBytes(0x12345678, NET_BYTES);
    servers.push(net.createServer({ allowHalfOpen: true }, (sock) => sock.end(down)).listen(DOWN_PORT, HOST_IP));
    return { downMd5: createHash('md5').update(down).digest('hex') };
  }

  let downMd5 = '';
  it('boots once with the devices on PCI and runs the guest script to the end', async () => {
    downMd5 = serve().downMd5;
    const plugins: PluginEntry[] = [
      { name: 'pci' },
      { name: 'virtio-pci' },
      { name: 'raw-disk' },
      { name: 'qcow' },
      { name: 'virtio-blk', id: 'vda', config: { path: raw.file, serial: 'pci-raw' } },
      { name: 'virtio-blk', id: 'vdb', config: { path: qcow.file, format: 'qcow2', serial: 'pci-qcow2' } },
      { name: 'virtio-net', id: 'net0', config: { mac: '52:54:00:79:00:02', backend: { kind: 'tap', name: TAP } } },
    ];
    const config = microConfig({ kit, dir, name: 'vpci', script: SCRIPT, vcpus: 2, memory: '512M', plugins });
    config.plugins = (config.plugins as PluginEntry[]).filter((p) => p.name !== 'virtio-mmio');
    config.boot.cmdline = String(config.boot.cmdline).replace(/(^| )pci=off( |$)/, ' ');
    config.virtio = { transport: 'pci' };
    const cfg = path.join(dir, 'vpci.yaml');
    fs.writeFileSync(cfg, stringify(config));
    const vmm = spawnVmm(cfg, { cwd: dir });
    // under the runner's 900 s watchdog, so that a stalled guest fails here with the VMM's own evidence (it ran
    // past the watchdog once, 2026-12-07, in a loaded sandbox; normally it takes 1-3 minutes). The guest prints a
    // line at each step (its longest quiet step, 64 MiB each way, takes 10-40 s; ~100 s in the slowest L1 seen,
    // 2026-12-07 17:30): 300 s of silence is a stall
    const r = await endedWithin(vmm, 600_000, { silentMs: 300_000 });
    const evidence = r.evidence && `\nthe stalled VMM, ${r.evidence}`;
    const out = parseGuestOutput(r.stdout);
    report = `exit ${r.code} ${r.signal}; output tail:\n${r.text.slice(-6000)}${evidence}`;
    result = guestResult(out.result ?? '');
    for (const l of (out.result ?? '')
      .split('\n')
      .filter((x) => /^(intr|dmesg): |^msi-/.test(x))
      .slice(0, 60))
      console.log(`      guest ${l.trimEnd()}`);
    const t = (k: string): string => result.get(`t-${k}`) ?? '?';
    console.log(
      `      boot to poweroff ${r.seconds.toFixed(1)} s; guest uptime: start ${t('start')}, disks ${t('disks')}, ` +
        `net ${t('net')}`,
    );
    expect(result.get('done'), report).to.equal('1');
    expect(out.exitCode, report).to.equal(0);
    expect(r.code, report).to.equal(0);
    expect(r.text, 'the guest kept pci on').to.not.match(/pci=off/);
  });

  it('the guest enumerates the virtio functions: 1af4:1042 twice (blk) and 1af4:1041 (net)', function () {
    if (!result) this.skip();
    const ids = (result.get('pci') ?? '').split(' ').filter(Boolean);
    expect(
      ids.filter((x) => x === '0x1af4:0x1042'),
      report,
    ).to.have.length(2);
    expect(
      ids.filter((x) => x === '0x1af4:0x1041'),
      report,
    ).to.have.length(1);
    expect(result.get('disk-pci-raw'), report).to.match(new RegExp(` ${DISK / 512}$`));
    expect(result.get('disk-pci-qcow2'), report).to.match(new RegExp(` ${DISK / 512}$`));
    const functions = {
      '0000:00:01.0': '0x1af4:0x1042',
      '0000:00:02.0': '0x1af4:0x1042',
      '0000:00:03.0': '0x1af4:0x1041',
    };
    expect(pciGuestProblems(result, functions), report).to.deep.equal([]);
  });

  it('the disks read back with their sha256; the patterns the guest wrote are in the host files', function () {
    if (!result) this.skip();
    expect(result.get('sha-raw'), report).to.equal(sha(raw.content));
    expect(result.get('sha-qcow2'), report).to.equal(sha(qcow.content));
    const rawNow = fs.readFileSync(raw.file);
    expect(rawNow.subarray(PATTERN_AT, PATTERN_AT + 21).toString('latin1')).to.equal('TSVMM-PCI-PATTERN-raw');
    execFileSync(qemuImg, ['check', '-q', qcow.file], { timeout: 120_000 }); // throws unless clean
    const flat = path.join(dir, 'qcow-now.raw');
    execFileSync(qemuImg, ['convert', '-q', '-O', 'raw', qcow.file, flat], { timeout: 120_000 });
    const qNow = fs.readFileSync(flat);
    expect(qNow.subarray(PATTERN_AT, PATTERN_AT + 23).toString('latin1')).to.equal('TSVMM-PCI-PATTERN-qcow2');
    // the rest of the disks is unchanged
    expect(sha(rawNow.subarray(0, PATTERN_AT))).to.equal(sha(raw.content.subarray(0, PATTERN_AT)));
    expect(sha(qNow.subarray(0, PATTERN_AT))).to.equal(sha(qcow.content.subarray(0, PATTERN_AT)));
  });

  it('64 MiB of TCP each way over the tap, md5 equal on both sides', function () {
    if (!result) this.skip();
    expect(result.get('ping'), report).to.equal('ok');
    expect(result.get('up-md5'), report).to.equal(upHash);
    expect(result.get('down-size'), report).to.equal(String(NET_BYTES));
    expect(result.get('down-md5'), report).to.equal(downMd5);
  });

  it('the virtio queues interrupt through PCI-MSIX vectors whose counts grew under the I/O', function () {
    if (!result) this.skip();
    const irqs = (phase: string): Map<string, { count: number; chip: string }> => {
      const m = new Map<string, { count: number; chip: string }>();
      for (const [k, v] of result)
        if (k.startsWith(`irq-${phase}-`)) {
          const [count, chip] = v.split(' ');
          m.set(k.slice(`irq-${phase}-`.length), { count: Number(count), chip });
        }
      return m;
    };
    const boot = irqs('boot');
    const io = new Map([...irqs('io')].filter(([n]) => n.includes('-'))); // virtioN-<queue>: the MSI-X vectors
    const lines = [...io.entries()].map(([name, v]) => `${v.chip} ${name}=${v.count}`).join(', ');
    console.log(`      /proc/interrupts after the I/O: ${lines}`);
    const names = [...io.keys()];
    for (const suffix of ['config', 'req.0', 'input.0', 'output.0'])
      expect(
        names.some((n) => n.endsWith(`-${suffix}`)),
        `${suffix} in ${lines}`,
      ).to.equal(true);
    for (const [name, v] of io) expect(v.chip, name).to.match(/PCI-MSI/);
    const grew = (suffix: string): boolean =>
      names.filter((n) => n.endsWith(`-${suffix}`)).some((n) => io.get(n)!.count > (boot.get(n)?.count ?? 0));
    for (const suffix of ['req.0', 'input.0', 'output.0'])
      expect(grew(suffix), `${suffix} grew: ${lines}`).to.equal(true);
    expect(result.get('msix-warnings'), report).to.equal('0');
  });
});
