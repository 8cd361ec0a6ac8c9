import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { buildLocations } from '../plugin/locations.js';
import { diskEntry, netEntry, QUICK_CMDLINE, QUICK_PLUGINS, quickConfig, QuickFormError } from './quick.js';

describe('vmm run quick form', () => {
  it("builds the micro host's plugin list and command line (hosts/micro.yaml)", () => {
    const micro = parse(fs.readFileSync(path.join(buildLocations().repoRoot, 'hosts', 'micro.yaml'), 'utf8')) as {
      plugins: unknown[];
      boot: { cmdline: string };
    };
    expect(QUICK_PLUGINS).to.deep.equal(micro.plugins);
    expect(QUICK_CMDLINE).to.equal(micro.boot.cmdline);
  });

  it('kernel, initramfs, cmdline, cpus, memory, disks and taps become the config a YAML would hold', () => {
    const c = quickConfig(
      {
        kernel: 'vmlinux',
        initramfs: '/boot/initrd.img',
        cmdline: 'console=ttyS0 quiet',
        cpus: '2',
        memory: '512M',
        disk: ['path=root.img', 'path=data.qcow2,readonly,format=qcow2'],
        net: ['tap=tap0,mac=52:54:00:12:34:56'],
      },
      '/home/me',
    );
    expect(c.machine).to.deep.equal({ vcpus: 2, memory: '512M' });
    expect(c.boot).to.deep.equal({
      kernel: '/home/me/vmlinux',
      initramfs: '/boot/initrd.img',
      cmdline: 'console=ttyS0 quiet',
    });
    const plugins = c.plugins as Record<string, unknown>[];
    expect(plugins.slice(0, QUICK_PLUGINS.length)).to.deep.equal(QUICK_PLUGINS);
    expect(plugins.slice(QUICK_PLUGINS.length)).to.deep.equal([
      { name: 'raw-disk' },
      { name: 'qcow' },
      { name: 'virtio-blk', id: 'disk0', config: { path: '/home/me/root.img' } },
      { name: 'virtio-blk', id: 'disk1', config: { path: '/home/me/data.qcow2', readOnly: true, format: 'qcow2' } },
      { name: 'virtio-net', id: 'net0', config: { backend: { kind: 'tap', name: 'tap0' }, mac: '52:54:00:12:34:56' } },
    ]);
  });

  it('defaults: 1 vCPU, 256M, no qcow without a qcow2 disk; guestkit: names stay as they are', () => {
    const c = quickConfig({ kernel: 'guestkit:vmlinux', disk: ['path=/d.img'] });
    expect(c.machine).to.deep.equal({ vcpus: 1, memory: '256M' });
    expect((c.boot as { kernel: string }).kernel).to.equal('guestkit:vmlinux');
    expect((c.plugins as { name: string }[]).map((p) => p.name)).to.not.include('qcow');
  });

  it('refuses flags it does not know, with the form to use', () => {
    expect(() => quickConfig({ memory: '1G' })).to.throw(QuickFormError, /needs --kernel/);
    expect(() => diskEntry('file=x', 0, '/')).to.throw(QuickFormError, /unknown 'file' \(path=FILE/);
    expect(() => diskEntry('readonly', 0, '/')).to.throw(QuickFormError, /give path=FILE/);
    expect(() => netEntry('user', 0)).to.throw(QuickFormError, /unknown 'user' \(tap=NAME/);
  });
});
