import { expect } from 'chai';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';

/** The repository root (found from the build folder, dist/ or .build/<name>/). */
const root = buildLocations().repoRoot;
const VMM = join(root, 'bin/vmm.js');
/** Source folder of the mock hypervisor fixture (a path plugin; the unbundled build runs it). */
const MOCK_HV = join(root, 'test/fixtures/mock-hypervisor');
/** Only to fail a hung run (before the fix, open() of a FIFO never returned); nothing is timed. */
const WATCHDOG_MS = 60_000;

interface Exit {
  code: number | null;
  stderr: string;
  hung: boolean;
}

/** Runs node with `args`; a run still alive at the watchdog is killed and reported as hung. */
function node(args: string[]): Promise<Exit> {
  return new Promise((res) => {
    const p = spawn(process.execPath, args, {
      env: { ...process.env, VMM_BUNDLE: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let hung = false;
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const dog = setTimeout(() => {
      hung = true;
      p.kill('SIGKILL');
    }, WATCHDOG_MS);
    p.on('close', (code) => {
      clearTimeout(dog);
      res({ code, stderr, hung });
    });
  });
}

const vmm = (args: string[]): Promise<Exit> => node([VMM, ...args]);

/**
 * FIFOs where regular files are expected (issue 11 item 7): before, open() blocked forever (the
 * main thread in openSync for a kernel, a libuv pool thread for disks) and SIGTERM did nothing.
 * Now each is refused at VM assembly: exit 2 and one line naming the file.
 */
describe('block: FIFOs named as kernel, initramfs, disk or backing file', function () {
  this.timeout(WATCHDOG_MS + 30_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vmm-fifo-'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    writeFileSync(join(dir, 'kernel.bin'), ''); // exists, so the disk cases reach their disk
    writeFileSync(join(dir, 'kernel.bin'), 'not a kernel');
    execFileSync(process.execPath, [
      VMM,
      'image',
      'create',
      join(dir, 'overlay.qcow2'),
      '1M',
      '-b',
      join(dir, 'fifo'),
      '-F',
      'raw',
    ]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function config(name: string, boot: string, disk?: string): string {
    const lines = [
      'machine: { vcpus: 1, memory: 64M }',
      `boot: { ${boot} }`,
      'plugins:',
      `  - path: ${MOCK_HV}`,
      '  - name: acpi',
      '  - name: x86',
    ];
    if (disk) {
      lines.push(
        '  - name: raw-disk',
        '  - name: qcow',
        '  - name: virtio-mmio',
        '  - name: virtio-blk',
        `    config: { ${disk} }`,
      );
    }
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, lines.join('\n') + '\n');
    return file;
  }

  const cases: Array<{ name: string; boot: string; disk?: string; message: RegExp }> = [
    { name: 'kernel', boot: 'kernel: fifo', message: /boot file .*fifo is a FIFO/ },
    { name: 'missing kernel', boot: 'kernel: no-such-kernel', message: /boot file .*no-such-kernel does not exist/ },
    { name: 'initramfs', boot: 'kernel: kernel.bin, initramfs: fifo', message: /boot file .*fifo is a FIFO/ },
    {
      name: 'raw disk',
      boot: 'kernel: kernel.bin',
      disk: 'path: fifo, format: raw',
      message: /disk image .*fifo is a FIFO/,
    },
    { name: 'disk, format auto', boot: 'kernel: kernel.bin', disk: 'path: fifo', message: /.*fifo is a FIFO/ },
    {
      name: 'qcow2 disk',
      boot: 'kernel: kernel.bin',
      disk: 'path: fifo, format: qcow2',
      message: /image .*fifo is a FIFO/,
    },
    {
      name: 'backing file',
      boot: 'kernel: kernel.bin',
      disk: 'path: overlay.qcow2, format: qcow2, allowBacking: true',
      message: /image .*fifo is a FIFO/,
    },
  ];

  it('each is refused with exit code 2 and one line naming the file', async () => {
    const runs = await Promise.all(
      cases.map((c) => vmm(['run', '--force', config(c.name.replace(/\W+/g, '-'), c.boot, c.disk)])),
    );
    runs.forEach((r, i) => {
      const c = cases[i]!;
      expect(r.hung, `${c.name}: still blocked after ${WATCHDOG_MS} ms`).to.equal(false);
      expect(r.code, `${c.name}: ${r.stderr}`).to.equal(2);
      expect(r.stderr, c.name).to.match(c.message);
      expect(r.stderr.trim().split('\n'), `${c.name}: one line`).to.have.length(1);
    });
  });

  it('the boot file reader refuses a FIFO that appears after the config was checked', async () => {
    const files = join(root, 'dist/core/host/boot-files.js');
    const script = `const m = await import(${JSON.stringify(files)});
      try { await m.readBootFile(${JSON.stringify(join(dir, 'fifo'))}, 'kernel'); } catch (e) { console.error(e.message); process.exit(2); }`;
    const r = await node(['--input-type=module', '-e', script]);
    expect(r.hung, 'readBootFile blocked in open()').to.equal(false);
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr).to.match(/cannot read the kernel .*fifo: not a regular file/);
  });

  it('vmm image info and check refuse a FIFO (exit 1, one line)', async () => {
    const fifo = join(dir, 'fifo');
    const runs = await Promise.all([vmm(['image', 'info', fifo]), vmm(['image', 'check', fifo])]);
    for (const r of runs) {
      expect(r.hung).to.equal(false);
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr).to.match(/fifo is a FIFO \(named pipe\), not a regular file/);
    }
  });
});
