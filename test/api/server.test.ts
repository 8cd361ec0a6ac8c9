import { expect } from 'chai';
import * as fs from 'node:fs';
import { ApiHarness, theSpec } from './harness.js';
import { ROUTES, UNSUPPORTED_PATHS } from '../../hosts/api/routes.js';

const KERNEL = '/boot/vmlinuz-test';
const vmConfig = (extra: Record<string, unknown> = {}) => ({
  payload: { kernel: KERNEL, cmdline: 'console=ttyS0' },
  cpus: { boot_vcpus: 2, max_vcpus: 2 },
  memory: { size: 256 * 1024 * 1024 },
  ...extra,
});

describe('api server: the Cloud Hypervisor life cycle', () => {
  let h: ApiHarness;
  afterEach(async () => h?.close());

  it('ping, create, boot, info, counters, pause, resume, reboot, shutdown, boot again, delete, vmm.shutdown', async () => {
    h = await new ApiHarness().start();
    const ping = await h.call('GET', 'vmm.ping');
    expect(ping.status).to.equal(200);
    expect(ping.body).to.include({ version: '0.1.0', pid: process.pid });

    const none = await h.call('GET', 'vm.info');
    expect(none.status).to.equal(404);
    expect(none.body).to.deep.equal(['Error from API', 'the VM is not created']);
    expect((await h.call('PUT', 'vm.pause')).status, 'pause without a VM').to.equal(404);

    expect((await h.call('PUT', 'vm.create', vmConfig())).status).to.equal(204);
    const created = await h.call('GET', 'vm.info');
    expect(created.body).to.deep.include({ state: 'Created' });
    expect((created.body as { config: unknown }).config).to.deep.equal(vmConfig());
    expect((await h.call('PUT', 'vm.pause')).status, 'pause before boot').to.equal(405);
    expect((await h.call('PUT', 'vm.create', vmConfig())).status, 'second create').to.equal(409);

    expect((await h.call('PUT', 'vm.boot')).status).to.equal(204);
    expect(h.fake.runs.configs[0]).to.deep.include({
      machine: { vcpus: 2, memory: 256 * 1024 * 1024, onReset: 'restart' },
    });
    const running = (await h.call('GET', 'vm.info')).body as { state: string; device_tree?: object };
    expect(running.state).to.equal('Running');
    expect(running.device_tree, 'one node per device').to.deep.equal({
      uart0: { id: 'uart0', resources: [], children: [] },
      rtc0: { id: 'rtc0', resources: [], children: [] },
    });
    expect((await h.call('PUT', 'vm.boot')).status, 'boot twice').to.equal(405);
    const counters = await h.call('GET', 'vm.counters');
    expect(counters.body).to.deep.equal({ uart0: { txBytes: 10 } });

    expect((await h.call('PUT', 'vm.pause')).status).to.equal(204);
    expect((await h.call('GET', 'vm.info')).body).to.deep.include({ state: 'Paused' });
    expect((await h.call('PUT', 'vm.pause')).status, 'pause twice').to.equal(405);
    expect((await h.call('PUT', 'vm.resume')).status).to.equal(204);
    expect((await h.call('PUT', 'vm.resume')).status, 'resume a running VM').to.equal(405);
    expect(h.fake.runs.machines[0].calls).to.deep.equal(['start', 'pause', 'resume']);

    expect((await h.call('PUT', 'vm.reboot')).status).to.equal(204);
    expect(h.fake.runs.machines).to.have.length(2);
    expect(h.fake.runs.machines[0].calls.at(-1)).to.equal('stop:reset');
    expect((await h.call('GET', 'vm.info')).body).to.deep.include({ state: 'Running' });

    const pb = await h.call('PUT', 'vm.power-button');
    expect(pb.status).to.equal(500);
    expect((pb.body as string[])[1]).to.match(/no power button/);

    expect((await h.call('PUT', 'vm.shutdown')).status).to.equal(204);
    expect(h.fake.runs.machines[1].calls.at(-1)).to.equal('stop:api');
    expect((await h.call('GET', 'vm.info')).body).to.deep.include({ state: 'Shutdown' });
    expect((await h.call('PUT', 'vm.shutdown')).status, 'shutdown twice').to.equal(405);
    expect((await h.call('GET', 'vm.counters')).status, 'counters of a stopped VM').to.equal(405);
    expect((await h.call('PUT', 'vm.boot')).status, 'boot after shutdown').to.equal(204);
    expect(h.fake.runs.machines).to.have.length(3);

    expect((await h.call('PUT', 'vm.delete')).status).to.equal(204);
    expect(h.fake.runs.machines[2].calls.at(-1)).to.equal('stop:api');
    expect((await h.call('GET', 'vm.info')).status).to.equal(404);

    expect((await h.call('PUT', 'vmm.shutdown')).status).to.equal(204);
    await new Promise((r) => setImmediate(r));
    expect(h.exited).to.equal(1);
    expect(fs.existsSync(h.socket), 'the socket file is removed').to.equal(false);
  });

  it('vmm.shutdown stops a running VM first', async () => {
    h = await new ApiHarness().start();
    await h.call('PUT', 'vm.create', vmConfig());
    await h.call('PUT', 'vm.boot');
    expect((await h.call('PUT', 'vmm.shutdown')).status).to.equal(204);
    expect(h.fake.runs.machines[0].calls.at(-1)).to.equal('stop:api');
  });

  it('a machine with a power button has it pressed', async () => {
    h = await new ApiHarness({ powerButton: true }).start();
    await h.call('PUT', 'vm.create', vmConfig());
    await h.call('PUT', 'vm.boot');
    expect((await h.call('PUT', 'vm.power-button')).status).to.equal(204);
  });

  it('a VM that fails to start answers 500 with the reason, and the server keeps answering', async () => {
    h = await new ApiHarness({ failWith: new Error("boot file '/nope' does not exist") }).start();
    await h.call('PUT', 'vm.create', vmConfig());
    const boot = await h.call('PUT', 'vm.boot');
    expect(boot.status).to.equal(500);
    expect((boot.body as string[]).join(' ')).to.match(/nope' does not exist/);
    expect((await h.call('GET', 'vm.info')).body, 'a failed boot leaves the VM created').to.deep.include({
      state: 'Created',
    });
    expect((await h.call('GET', 'vmm.ping')).status).to.equal(200);
  });

  it("vm.boot makes vmm run's checks first: a missing kernel and disk are one 400 naming both", async () => {
    h = await new ApiHarness().start({ run: undefined });
    const cfg = vmConfig({ disks: [{ path: '/nonexistent/disk.img' }] });
    cfg.payload.kernel = '/nonexistent/vmlinux';
    await h.call('PUT', 'vm.create', cfg);
    const boot = await h.call('PUT', 'vm.boot');
    expect(boot.status).to.equal(400);
    expect((boot.body as string[])[0]).to.equal('Invalid VM config');
    expect((boot.body as string[])[1]).to.match(/\/nonexistent\/vmlinux does not exist; .*\/nonexistent\/disk\.img/);
    expect((await h.call('GET', 'vm.info')).body).to.deep.include({ state: 'Created' });
  });

  it('vm.create refuses what tsvmm lacks by name, and bad bodies with 400', async () => {
    h = await new ApiHarness().start();
    const pmem = await h.call('PUT', 'vm.create', vmConfig({ pmem: [{ file: '/tmp/p' }] }));
    expect(pmem.status).to.equal(500);
    expect((pmem.body as string[])[1]).to.equal('VmConfig.pmem is not supported by tsvmm');
    const unknown = await h.call('PUT', 'vm.create', vmConfig({ vsockk: {} }), true);
    expect(unknown.status).to.equal(400);
    expect(unknown.body).to.deep.equal(['Failed to deserialize JSON', 'body: Unrecognized key: "vsockk"']);
    const wrong = await h.call('PUT', 'vm.create', { payload: { kernel: 7 } }, true);
    expect(wrong.status).to.equal(400);
    expect((wrong.body as string[])[1]).to.match(/^payload\.kernel: /);
    const noBody = await h.call('PUT', 'vm.create', undefined, true);
    expect(noBody.status).to.equal(400);
    expect((await h.call('GET', 'vm.info')).status, 'nothing was created').to.equal(404);
  });

  it('hotplug, snapshot and migration answer "not available" in the error shape until their contracts land', async () => {
    h = await new ApiHarness().start();
    await h.call('PUT', 'vm.create', vmConfig());
    await h.call('PUT', 'vm.boot');
    const cases: [string, unknown][] = [
      ['vm.add-disk', { path: '/tmp/disk.img' }],
      ['vm.add-net', { tap: 'tap0' }],
      ['vm.add-device', { path: '/sys/bus/pci/devices/0000:00:01.0' }],
      ['vm.remove-device', { id: 'disk0' }],
      ['vm.send-migration', { destination_url: 'unix:/tmp/m.sock' }],
    ];
    for (const [name, body] of cases) {
      const a = await h.call('PUT', name, body);
      expect(a.status, name).to.equal(500);
      expect((a.body as string[])[1], name).to.match(/not available/);
    }
    expect((await h.call('PUT', 'vm.snapshot', { destination_url: 'file:///tmp/snap' })).status, 'running').to.equal(
      405,
    );
    await h.call('PUT', 'vm.pause');
    const snap = await h.call('PUT', 'vm.snapshot', { destination_url: 'file:///tmp/snap' });
    expect((snap.body as string[])[1]).to.match(/not available/);
    // restore and receive need no VM: with one there, CH's 409; the URL must be file:///
    expect((await h.call('PUT', 'vm.restore', { source_url: 'file:///tmp/snap' })).status).to.equal(409);
    expect((await h.call('PUT', 'vm.receive-migration', { receiver_url: 'unix:/tmp/m' })).status).to.equal(409);
    expect((await h.call('PUT', 'vm.restore', { source_url: '/tmp/snap' })).status).to.equal(400);
    await h.call('PUT', 'vm.delete');
    for (const [name, body] of [
      ['vm.restore', { source_url: 'file:///tmp/snap' }],
      ['vm.receive-migration', { receiver_url: 'unix:/tmp/m.sock' }],
    ] as const) {
      const a = await h.call('PUT', name, body);
      expect(a.status, name).to.equal(500);
      expect((a.body as string[])[1], name).to.match(/not available/);
    }
  });

  it('snapshot, send-migration, restore and receive-migration go through the C3 functions', async () => {
    const events: string[] = [];
    const sink = { emit: (_s: string, e: string) => void events.push(e), watch: () => {}, close: async () => {} };
    h = new ApiHarness();
    const calls: string[] = [];
    const input = { config: { machine: { onReset: 'exit', vcpus: 1, memory: 1 << 20 }, plugins: [] }, baseDir: '/' };
    await h.start({
      events: sink,
      ext: {
        pause: async (vm) => void (calls.push('pauseVm'), await vm.machine!.pause()),
        resume: async (vm) => void (calls.push('resumeVm'), await vm.machine!.resume()),
        snapshot: async (_vm, dir) => void calls.push(`snapshot ${dir}`),
        sendMigration: async (vm, url, progress) => {
          calls.push(`send ${url}`);
          progress({ round: 1, sentBytes: 10, dirtyBytes: 0, bytesPerSecond: 1 });
          await vm.machine!.stop({ kind: 'api' });
        },
        runRestored: (dir, o) => (calls.push(`restore ${dir}`), h.fake.run(input, o)),
        runReceived: (url, o) => (calls.push(`receive ${url}`), h.fake.run(input, o)),
      },
    });
    await h.call('PUT', 'vm.create', vmConfig());
    await h.call('PUT', 'vm.boot');
    await h.call('PUT', 'vm.pause');
    expect((await h.call('PUT', 'vm.snapshot', { destination_url: 'file:///tmp/a%20b' })).status).to.equal(204);
    await h.call('PUT', 'vm.resume');
    expect((await h.call('PUT', 'vm.send-migration', { destination_url: 'tcp:10.0.0.2:6000' })).status).to.equal(204);
    expect((await h.call('GET', 'vm.info')).body).to.deep.include({ state: 'Shutdown' });
    await h.call('PUT', 'vm.delete');
    expect((await h.call('PUT', 'vm.restore', { source_url: 'file:///tmp/snap' })).status).to.equal(204);
    expect((await h.call('GET', 'vm.info')).body, 'restored paused, as CH').to.deep.include({ state: 'Paused' });
    await h.call('PUT', 'vm.resume');
    await h.call('PUT', 'vm.delete');
    expect((await h.call('PUT', 'vm.receive-migration', { receiver_url: 'unix:/tmp/m' })).status).to.equal(204);
    expect((await h.call('GET', 'vm.info')).body).to.deep.include({ state: 'Running' });
    expect(calls).to.deep.equal([
      'pauseVm',
      'snapshot /tmp/a b',
      'resumeVm',
      'send tcp:10.0.0.2:6000',
      'restore /tmp/snap',
      'pauseVm',
      'resumeVm',
      'receive unix:/tmp/m',
    ]);
    expect(events.filter((e) => e === 'progress' || e === 'completed')).to.deep.equal(['progress', 'completed']);
  });

  it('hotplug goes through the C2 capability when it is there, and the event monitor hears of it', async () => {
    const events: string[] = [];
    const sink = { emit: (_s: string, e: string) => void events.push(e), watch: () => {}, close: async () => {} };
    h = await new ApiHarness().start({ events: sink });
    const added: unknown[] = [];
    h.vmm.ext.addDevice = async (_vm, entry) => (added.push(entry), { id: entry.id ?? '?' });
    h.vmm.ext.removeDevice = async () => {};
    await h.call('PUT', 'vm.create', vmConfig());
    await h.call('PUT', 'vm.boot');
    const a = await h.call('PUT', 'vm.add-disk', { path: '/tmp/d.img', readonly: true });
    expect(a.status).to.equal(200);
    expect(a.body).to.deep.equal({ id: 'disk0', bdf: '' });
    expect(added[0]).to.deep.include({ name: 'virtio-blk', id: 'disk0' });
    expect((added[0] as { config: unknown }).config).to.deep.include({ path: '/tmp/d.img', readOnly: true });
    expect((await h.call('PUT', 'vm.remove-device', { id: 'disk0' })).status).to.equal(204);
    expect(events).to.deep.equal(['device-added', 'device-removed']);
    // virtio-fs, vsock and VFIO go the same way, each as its plugin's entry
    const fs = await h.call('PUT', 'vm.add-fs', {
      tag: 'share',
      socket: '/run/vfsd.sock',
      num_queues: 1,
      queue_size: 512,
    });
    expect(fs.body).to.deep.equal({ id: 'fs0', bdf: '' });
    const vsock = await h.call('PUT', 'vm.add-vsock', { cid: 7, socket: '/run/v.sock', id: 'vs' });
    expect(vsock.body).to.deep.equal({ id: 'vs', bdf: '' });
    const vfio = await h.call('PUT', 'vm.add-device', { path: '/sys/bus/pci/devices/0000:01:00.0/' });
    expect(vfio.body).to.deep.equal({ id: 'vfio0', bdf: '' });
    expect(added.slice(1)).to.deep.equal([
      {
        name: 'virtio-fs',
        id: 'fs0',
        config: { socket: '/run/vfsd.sock', tag: 'share', numRequestQueues: 1, queueSize: 512 },
      },
      { name: 'virtio-vsock', id: 'vs', config: { guestCid: 7, udsPath: '/run/v.sock' } },
      { name: 'vfio', id: 'vfio0', config: { device: '/sys/bus/pci/devices/0000:01:00.0' } },
    ]);
    // what tsvmm cannot place is refused before the VM sees anything
    const iommu = await h.call('PUT', 'vm.add-device', { path: '/sys/bus/pci/devices/0000:01:00.0', iommu: true });
    expect(iommu.status).to.equal(500);
    expect((iommu.body as string[])[1]).to.match(/virtual IOMMU/);
    const badQueue = await h.call('PUT', 'vm.add-fs', { tag: 't', socket: '/s', num_queues: 1, queue_size: 100 });
    expect(badQueue.status).to.equal(400);
    expect(added).to.have.length(4);
  });

  it("vm.resize sets the balloon's target; vCPUs and RAM other than the VM's are refused", async () => {
    h = await new ApiHarness().start();
    await h.call('PUT', 'vm.create', vmConfig());
    await h.call('PUT', 'vm.boot');
    const none = await h.call('PUT', 'vm.resize', { desired_balloon: 1 << 20 });
    expect(none.status).to.equal(400);
    expect((none.body as string[])[1]).to.match(/no balloon/);
    await h.call('PUT', 'vm.delete');
    await h.call('PUT', 'vm.create', vmConfig({ balloon: { size: 0 } }));
    await h.call('PUT', 'vm.boot');
    expect((await h.call('PUT', 'vm.resize', { desired_balloon: 64 << 20 })).status).to.equal(204);
    expect(h.fake.runs.balloonTargets).to.deep.equal([64n << 20n]);
    const cpus = await h.call('PUT', 'vm.resize', { desired_vcpus: 8 });
    expect((cpus.body as string[])[1]).to.match(/CPU hotplug/);
    const ram = await h.call('PUT', 'vm.resize', { desired_ram: 1 << 30 });
    expect((ram.body as string[])[1]).to.match(/memory hotplug/);
    const tooBig = await h.call('PUT', 'vm.resize', { desired_balloon: 2 ** 40 });
    expect(tooBig.status).to.equal(400);
    expect(h.fake.runs.balloonTargets).to.have.length(1);
  });

  it('answers every path of the spec: served ones by route, the others "not supported" in the error shape', async () => {
    h = await new ApiHarness().start();
    const specPaths = Object.keys(theSpec().paths).map((p) => p.slice(1));
    expect([...Object.keys(ROUTES), ...UNSUPPORTED_PATHS].sort()).to.deep.equal([...specPaths].sort());
    for (const name of UNSUPPORTED_PATHS) {
      const method = Object.keys(theSpec().paths[`/${name}`])[0].toUpperCase() as 'PUT';
      const a = await h.call(method, name, undefined, true);
      expect(a.status, name).to.equal(500);
      expect(a.body, name).to.deep.equal(['Error from API', `${name} is not supported by tsvmm`]);
    }
    const wrongMethod = await h.call('PUT', 'vm.info', undefined, true);
    expect(wrongMethod.status).to.equal(400);
    const nowhere = await h.call('GET', 'vm.nowhere', undefined, true);
    expect(nowhere.status).to.equal(404);
  });

  it('serves GET /metrics in Prometheus text: the state and the device counters', async () => {
    h = await new ApiHarness().start();
    await h.call('PUT', 'vm.create', vmConfig());
    await h.call('PUT', 'vm.boot');
    const { apiRequest } = await import('../../hosts/api/client.js');
    const m = await apiRequest(h.socket, 'GET', '/metrics');
    expect(m.status).to.equal(200);
    expect(m.contentType).to.match(/^text\/plain/);
    const text = m.body as string;
    expect(text).to.include('tsvmm_vm_state{state="Running"} 1');
    expect(text).to.include('# TYPE tsvmm_device_tx_bytes_total counter');
    expect(text).to.include('tsvmm_device_tx_bytes_total{device="uart0"} 10');
  });
});
