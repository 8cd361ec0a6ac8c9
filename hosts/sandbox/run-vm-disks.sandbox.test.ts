/**
 * Sandbox tier (runs on the host; it starts the sandbox itself): `vmm run --sandbox` as a user runs
 * it (bin/vmm.js, a YAML file) with a raw and a qcow2 disk. ONE sandbox boot: the guest writes a
 * 1 MiB pattern (made here, shipped in its initramfs) to each disk with fsync and powers off. The
 * host files hold the pattern afterwards, the qcow2 image has grown and `qemu-img check` finds it
 * clean. Before virtio-fs sharing, the sandbox copied disks in and never back: both checks failed.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { guestKit, writeInitramfsWithScript } from '../guestkit/index.js';
import { projectLayout } from './sandbox.js';

const MiB = 1 << 20;
const RAW_AT = 3 * MiB;
const QCOW_AT = 7 * MiB;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The guest finds each disk by its serial and writes /pattern at the given MiB offset, durably. */
const GUEST_SCRIPT = `
set -e
for d in /sys/block/vd*; do
  case "$(cat $d/serial)" in
    raw-disk) RAW=/dev/$(basename $d);;
    qcow-disk) QCOW=/dev/$(basename $d);;
  esac
done
[ -n "$RAW" ] && [ -n "$QCOW" ] || { echo "disks not found"; exit 10; }
dd if=/pattern of=$RAW bs=1M seek=${RAW_AT / MiB} conv=fsync 2>/dev/null
dd if=/pattern of=$QCOW bs=1M seek=${QCOW_AT / MiB} conv=fsync 2>/dev/null
sync
echo "guest-pattern-sha=$(sha256sum /pattern | cut -d' ' -f1)"
`;

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

/** Runs bin/vmm.js with the arguments; resolves with its status and output. */
function vmm(args: string[], timeoutMs: number): Promise<{ status: number | null; out: string }> {
  const { root } = projectLayout();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'bin', 'vmm.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, out });
    });
  });
}

describe("vmm run --sandbox: the guest's disk writes reach the host files (sandbox tier)", function () {
  this.timeout(900_000);
  let dir: string;
  let raw: string, qcow: string;
  const pattern = randomBytes(MiB);
  let run: { status: number | null; out: string };

  before(async () => {
    const kit = await guestKit({ log: () => {} });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sbx-disks-'));
    raw = path.join(dir, 'raw.img');
    qcow = path.join(dir, 'disk.qcow2');
    fs.writeFileSync(raw, '');
    fs.truncateSync(raw, 16 * MiB);
    const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow, '32M'], { encoding: 'utf8' });
    expect(made.status, made.stderr).to.equal(0);
    const initramfs = writeInitramfsWithScript(kit, GUEST_SCRIPT, path.join(dir, 'initramfs.gz'), { pattern });
    const config = {
      machine: { vcpus: 1, memory: '256M' },
      boot: {
        kernel: 'guestkit:vmlinux',
        initramfs: path.basename(initramfs),
        cmdline:
          'console=ttyS0 quiet reboot=k panic=1 pci=off 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd',
      },
      plugins: [
        { name: 'kvm' },
        { name: 'acpi' },
        { name: 'x86' },
        { name: 'serial', config: { port: 'COM1', console: { kind: 'stdio' } } },
        { name: 'i8042' },
        { name: 'rtc' },
        { name: 'virtio-mmio' },
        { name: 'raw-disk' },
        { name: 'qcow' },
        { name: 'virtio-blk', id: 'vda', config: { path: 'raw.img', serial: 'raw-disk' } },
        { name: 'virtio-blk', id: 'vdb', config: { path: 'disk.qcow2', format: 'qcow2', serial: 'qcow-disk' } },
      ],
    };
    fs.writeFileSync(path.join(dir, 'vm.yaml'), stringify(config));
    run = await vmm(['run', '--sandbox', path.join(dir, 'vm.yaml')], 840_000);
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("runs the guest to its poweroff: exit status 0, the guest's console on our stdout", () => {
    expect(run.status, run.out.slice(-3000)).to.equal(0);
    expect(run.out).to.include(`guest-pattern-sha=${sha(pattern)}`);
  });

  it('the raw disk file holds the pattern where the guest wrote it, and zeros elsewhere', () => {
    expect(sha(readAt(raw, RAW_AT, MiB))).to.equal(sha(pattern));
    expect(readAt(raw, 0, RAW_AT).every((b) => b === 0)).to.equal(true);
    expect(fs.statSync(raw).size).to.equal(16 * MiB);
  });

  it('the qcow2 image grew, holds the pattern (qemu-img convert) and is clean (qemu-img check)', () => {
    const check = spawnSync('qemu-img', ['check', qcow], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).to.equal(0);
    expect(fs.statSync(qcow).size).to.be.greaterThan(MiB);
    const flat = path.join(dir, 'flat.raw');
    const conv = spawnSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow, flat], { encoding: 'utf8' });
    expect(conv.status, conv.stderr).to.equal(0);
    expect(sha(readAt(flat, QCOW_AT, MiB))).to.equal(sha(pattern));
  });
});
