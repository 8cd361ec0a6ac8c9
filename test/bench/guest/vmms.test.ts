import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { GuestKit } from '../../../hosts/guestkit/kit.js';
import { oursArgv, qemuBenchArgv, type GuestSpec } from './vmms.js';

describe('bench VMM command lines: the same devices for ours and QEMU per transport', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-vmms-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const spec = (over: Partial<GuestSpec>): GuestSpec => ({
    kit: { vmlinux: '/kit/vmlinux' } as GuestKit,
    initramfs: '/kit/bench.initramfs',
    memoryMiB: 256,
    vcpus: 1,
    dir,
    disk: { path: '/d/disk.qcow2', format: 'qcow2' },
    tap: 'tb0',
    ...over,
  });
  const ours = (g: GuestSpec) =>
    parse(readFileSync(oursArgv(g, 'x').config, 'utf8')) as {
      machine: Record<string, unknown>;
      boot: { cmdline: string };
      plugins: { name: string; id?: string; config?: Record<string, unknown> }[];
    };

  it('mmio: micro against QEMU microvm with virtio-*-device', () => {
    const q = qemuBenchArgv(spec({})).join(' ');
    expect(q).to.match(/-M microvm/);
    expect(q).to.include('virtio-blk-device,drive=vda').and.include('virtio-net-device,netdev=n0');
    const c = ours(spec({}));
    expect(c.boot.cmdline).to.include('pci=off');
    expect(c.plugins.map((p) => p.name)).to.include.members(['virtio-mmio', 'qcow', 'virtio-blk', 'virtio-net']);
  });

  it('pci: the cloud host without its own disk and NIC against QEMU q35 with virtio-*-pci', () => {
    const q = qemuBenchArgv(spec({ transport: 'pci' })).join(' ');
    expect(q).to.match(/-M q35 /);
    expect(q).to.include('virtio-blk-pci,drive=vda').and.include('virtio-net-pci,netdev=n0,romfile=');
    expect(q).not.to.include('pci=off');
    const c = ours(spec({ transport: 'pci' }));
    expect(c.boot.cmdline).not.to.include('pci=off');
    const names = c.plugins.map((p) => p.name);
    expect(names).to.include.members(['pci', 'virtio-pci', 'acpi']).and.not.include('virtio-mmio');
    expect(names.filter((n) => n === 'qcow')).to.have.length(1);
    const blk = c.plugins.filter((p) => p.name === 'virtio-blk');
    expect(blk).to.have.length(1);
    expect(blk[0].config?.path).to.equal('/d/disk.qcow2');
    expect(c.plugins.filter((p) => p.name === 'virtio-net')[0].config?.backend).to.deep.include({ name: 'tb0' });
  });

  it('vhost-user: both sides get the same sockets, guest RAM in a shared memfd', () => {
    const g = spec({
      transport: 'pci',
      disk: undefined,
      tap: undefined,
      vhost: { blkSocket: '/s/blk.sock', fs: { socket: '/s/fs.sock', tag: 'benchfs' } },
    });
    const q = qemuBenchArgv(g).join(' ');
    expect(q).to.include('memory-backend-memfd,id=tsvmm-ram,size=256M,share=on');
    expect(q).to.include('socket,id=vub0,path=/s/blk.sock').and.include('vhost-user-blk-pci,chardev=vub0');
    expect(q).to.include('socket,id=vfs0,path=/s/fs.sock').and.include('vhost-user-fs-pci,chardev=vfs0,tag=benchfs');
    const c = ours(g);
    expect(c.machine.memoryBackend).to.equal('memfd');
    expect(c.plugins.find((p) => p.name === 'vhost-user-blk')?.config).to.deep.equal({ socket: '/s/blk.sock' });
    expect(c.plugins.find((p) => p.name === 'virtio-fs')?.config).to.deep.equal({
      socket: '/s/fs.sock',
      tag: 'benchfs',
    });
  });

  it('vfio: the same host function to our vfio plugin and to QEMU vfio-pci (no option ROM)', () => {
    const g = spec({ transport: 'pci', disk: undefined, tap: undefined, vfio: '0000:00:04.0' });
    expect(qemuBenchArgv(g).join(' ')).to.include('-device vfio-pci,host=0000:00:04.0,rombar=0');
    expect(ours(g).plugins.filter((p) => p.name === 'vfio')).to.deep.equal([
      { name: 'vfio', id: 'vfio0', config: { device: '0000:00:04.0' } },
    ]);
    expect(qemuBenchArgv(spec({ transport: 'pci' })).join(' ')).not.to.include('vfio');
  });
});
