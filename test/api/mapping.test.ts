import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { buildLocations } from '../../core/plugin/locations.js';
import { API_HOST_PLUGINS, CLOUD_HOST_PLUGINS, describeVmConfig, mapVmConfig } from '../../hosts/api/mapping.js';
import { VmConfig } from '../../hosts/api/schemas.js';
import { VmConfigSchema } from '../../core/config/schema.js';
import { ApiError } from '../../hosts/api/errors.js';
import { VfioConfigSchema } from '../../plugins/vfio/plugin.js';
import { VhostUserBlkConfigSchema } from '../../plugins/vhost-user-blk/config.js';
import { VirtioBalloonConfigSchema } from '../../plugins/virtio-balloon/config.js';
import { VirtioFsConfigSchema } from '../../plugins/virtio-fs/config.js';
import { VirtioVsockConfigSchema } from '../../plugins/virtio-vsock/config.js';

const ch = (extra: Record<string, unknown> = {}) =>
  VmConfig.parse({ payload: { kernel: '/k/vmlinux', initramfs: 'initrd.img', cmdline: 'console=ttyS0' }, ...extra });

const refused = (f: () => unknown): ApiError => {
  try {
    f();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('not refused');
};

describe("api mapping: Cloud Hypervisor's VmConfig onto our plugin list", () => {
  it('uses the micro host plugin list (checked against hosts/micro.yaml)', () => {
    const micro = parse(fs.readFileSync(path.join(buildLocations().repoRoot, 'hosts', 'micro.yaml'), 'utf8')) as {
      plugins: { name: string }[];
    };
    expect(micro.plugins.map((p) => p.name)).to.deep.equal([...API_HOST_PLUGINS]);
  });

  it('uses the cloud host plugin list (checked against hosts/cloud.yaml, less its disk and NIC)', () => {
    const cloud = parse(fs.readFileSync(path.join(buildLocations().repoRoot, 'hosts', 'cloud.yaml'), 'utf8')) as {
      plugins: { name: string; id?: string; config?: Record<string, unknown> }[];
    };
    const names = cloud.plugins.filter((p) => !p.id && p.name !== 'raw-disk' && p.name !== 'qcow').map((p) => p.name);
    expect(names).to.deep.equal([...CLOUD_HOST_PLUGINS]);
    const m = mapVmConfig(ch({ disks: [{ path: '/d.img' }] }), '/srv', 'cloud');
    expect(m.config.plugins.map((p) => p.name)).to.deep.equal([
      ...CLOUD_HOST_PLUGINS,
      'raw-disk',
      'qcow',
      'virtio-blk',
    ]);
    // the power button as in hosts/cloud.yaml (vm.power-button, SIGTERM)
    const x86 = (h: { plugins: { name: string; config?: unknown }[] }) => h.plugins.find((p) => p.name === 'x86')!;
    expect(x86(m.config).config).to.deep.equal(x86(cloud).config);
    expect(VmConfigSchema.safeParse(m.config).success).to.equal(true);
  });

  it('maps payload, cpus, memory and serial; relative paths start at the base folder', () => {
    const m = mapVmConfig(
      ch({
        cpus: { boot_vcpus: 2, max_vcpus: 4 },
        memory: { size: 512 * 1024 * 1024 },
        serial: { mode: 'Socket', socket: 'serial.sock' },
      }),
      '/srv',
    );
    expect(m.config.machine).to.deep.equal({ vcpus: 2, memory: 512 * 1024 * 1024, onReset: 'restart' });
    expect(m.config.boot).to.deep.equal({
      kernel: '/k/vmlinux',
      initramfs: '/srv/initrd.img',
      cmdline: 'console=ttyS0',
    });
    expect(m.config.plugins.map((p) => p.name)).to.deep.equal([...API_HOST_PLUGINS, 'raw-disk', 'qcow']);
    expect(m.config.plugins[3].config).to.deep.equal({
      port: 'COM1',
      console: { kind: 'unix-socket', path: '/srv/serial.sock' },
    });
    expect(m.ignored).to.deep.equal(['cpus.max_vcpus']);
    // what comes out is a config our schema accepts
    expect(VmConfigSchema.safeParse(m.config).success).to.equal(true);
    // host file names stay as they are
    expect(mapVmConfig(ch({ payload: { kernel: 'guestkit:vmlinux' } }), '/srv').config.boot.kernel).to.equal(
      'guestkit:vmlinux',
    );
  });

  it('maps disks to raw-disk + qcow + one virtio-blk each, nets to virtio-net', () => {
    const m = mapVmConfig(
      ch({
        disks: [{ path: '/d/root.img' }, { path: '/d/data.qcow2', readonly: true, image_type: 'Qcow2', id: 'data' }],
        net: [{ tap: 'tap0', mac: '52:54:00:12:34:56' }, {}],
      }),
      '/srv',
    );
    const extra = m.config.plugins.slice(API_HOST_PLUGINS.length);
    expect(extra).to.deep.equal([
      { name: 'raw-disk' },
      { name: 'qcow' },
      {
        name: 'virtio-blk',
        id: 'disk0',
        config: { path: '/d/root.img', readOnly: false, direct: false, format: 'raw', allowBacking: false },
      },
      {
        name: 'virtio-blk',
        id: 'data',
        config: { path: '/d/data.qcow2', readOnly: true, direct: false, format: 'qcow2', allowBacking: false },
      },
      { name: 'virtio-net', id: 'net0', config: { backend: { kind: 'tap', name: 'tap0' }, mac: '52:54:00:12:34:56' } },
      { name: 'virtio-net', id: 'net1', config: { backend: { kind: 'tap', create: true } } },
    ]);
  });

  it('maps fs, vsock, balloon, VFIO devices and vhost-user disks to their plugins; shared memory to memfd', () => {
    const m = mapVmConfig(
      ch({
        memory: { size: 1 << 30, shared: true },
        disks: [{ vhost_user: true, vhost_socket: 'qsd.sock', num_queues: 2 }],
        fs: [{ tag: 'share', socket: '/run/fs.sock' }],
        vsock: { cid: 42, socket: 'v.sock' },
        balloon: { size: 64 << 20, deflate_on_oom: true },
        devices: [{ path: '/sys/bus/pci/devices/0000:01:00.0/', pci_device_id: 5 }],
        rng: { src: '/dev/urandom' },
      }),
      '/srv',
      'cloud',
    );
    expect(m.config.machine.memoryBackend).to.equal('memfd');
    expect(m.ignored).to.include('rng');
    expect(m.config.plugins.slice(CLOUD_HOST_PLUGINS.length + 2)).to.deep.equal([
      { name: 'vhost-user-blk', id: 'disk0', config: { socket: '/srv/qsd.sock', numQueues: 2 } },
      {
        name: 'virtio-fs',
        id: 'fs0',
        config: { socket: '/run/fs.sock', tag: 'share', numRequestQueues: 1, queueSize: 1024 },
      },
      { name: 'virtio-vsock', id: 'vsock0', config: { guestCid: 42, udsPath: '/srv/v.sock' } },
      {
        name: 'virtio-balloon',
        id: 'balloon0',
        config: { target: 64 << 20, deflateOnOom: true, freePageReporting: false },
      },
      { name: 'vfio', id: 'vfio0', config: { device: '/sys/bus/pci/devices/0000:01:00.0', slot: 5 } },
    ]);
    // each entry is a config its plugin takes
    const schemas: Record<string, { parse(v: unknown): unknown }> = {
      'vhost-user-blk': VhostUserBlkConfigSchema,
      'virtio-fs': VirtioFsConfigSchema,
      'virtio-vsock': VirtioVsockConfigSchema,
      'virtio-balloon': VirtioBalloonConfigSchema,
      vfio: VfioConfigSchema,
    };
    for (const p of m.config.plugins)
      if (schemas[p.name]) expect(() => schemas[p.name]!.parse(p.config)).to.not.throw();
    // and vm.info describes them back as they were asked for
    const back = describeVmConfig(VmConfigSchema.parse(m.config), '/srv');
    expect(back.fs).to.deep.equal([
      { id: 'fs0', tag: 'share', socket: '/run/fs.sock', num_queues: 1, queue_size: 1024 },
    ]);
    expect(back.vsock).to.deep.equal({ id: 'vsock0', cid: 42, socket: '/srv/v.sock' });
    expect(back.balloon).to.deep.equal({
      id: 'balloon0',
      size: 64 << 20,
      deflate_on_oom: true,
      free_page_reporting: false,
    });
    expect(back.devices).to.deep.equal([{ id: 'vfio0', path: '/sys/bus/pci/devices/0000:01:00.0' }]);
    expect(back.disks).to.deep.equal([{ id: 'disk0', vhost_user: true, vhost_socket: '/srv/qsd.sock' }]);
  });

  it('refuses device placements tsvmm has no model for, and VFIO on the micro host', () => {
    const vfio = { devices: [{ path: '/sys/bus/pci/devices/0000:01:00.0' }] };
    expect(refused(() => mapVmConfig(ch(vfio), '/')).message).to.match(/micro host/);
    expect(refused(() => mapVmConfig(ch({ vsock: { cid: 3, socket: '/v', iommu: true } }), '/')).message).to.match(
      /virtual IOMMU/,
    );
    expect(refused(() => mapVmConfig(ch({ fs: [{ tag: 't', socket: '/s', pci_segment: 1 }] }), '/')).message).to.match(
      /PCI segment 1/,
    );
    expect(refused(() => mapVmConfig(ch({ disks: [{ vhost_user: true }] }), '/')).message).to.match(/vhost_socket/);
    expect(refused(() => mapVmConfig(ch({ memory: { size: 1 << 30, hugepages: true } }), '/')).message).to.match(
      /hugepages/,
    );
  });

  it('refuses what tsvmm lacks, naming it; accepts "off" values of those fields', () => {
    expect(refused(() => mapVmConfig(ch({ pmem: [{ file: '/p' }] }), '/')).message).to.equal(
      'VmConfig.pmem is not supported by tsvmm',
    );
    expect(refused(() => mapVmConfig(ch({ console: { mode: 'Tty' } }), '/')).message).to.match(/virtio console/);
    expect(refused(() => mapVmConfig(ch({ payload: { firmware: '/fw' } }), '/')).message).to.match(/firmware/);
    expect(refused(() => mapVmConfig(ch({ payload: {} }), '/')).kind).to.equal('BadRequest');
    expect(
      refused(() =>
        mapVmConfig(
          ch({
            disks: [
              { path: '/a', id: 'x' },
              { path: '/b', id: 'x' },
            ],
          }),
          '/',
        ),
      ).kind,
    ).to.equal('AlreadyExists');
    expect(() => mapVmConfig(ch({ iommu: false, devices: [], console: { mode: 'Off' }, rtc: {} }), '/')).to.not.throw();
  });

  it("describes one of our configs as a VmConfig (vm.info of a VM that 'vmm run' started)", () => {
    const ours = VmConfigSchema.parse({
      machine: { vcpus: 2, memory: '64M' },
      boot: { kernel: 'k', cmdline: 'x' },
      plugins: [{ name: 'virtio-blk', id: 'vda', config: { path: 'd.img', readOnly: true } }],
    });
    expect(describeVmConfig(ours, '/srv')).to.deep.equal({
      payload: { kernel: 'k', cmdline: 'x' },
      cpus: { boot_vcpus: 2, max_vcpus: 2 },
      memory: { size: 64 * 1024 * 1024 },
      disks: [{ id: 'vda', path: '/srv/d.img', readonly: true }],
    });
  });
});
