import 'reflect-metadata';
import { expect } from 'chai';
import { container as root } from 'tsyringe';
import { VmLifecycle } from '../../core/lifecycle.js';
import { Tokens } from '../../core/tokens.js';
import { registerPluginInstance } from '../../core/plugin/instance.js';
import { readManifestFile } from '../../core/plugin/manifest.js';
import { buildLocations } from '../../core/plugin/locations.js';
import { join } from 'node:path';
import { silentLogger } from '../../core/testing/index.js';
import { KvmConfigSchema } from './config.js';
import type { KvmHypervisor } from './hypervisor.js';
import type { WorkerVcpuRunner } from './runner/worker-runner.js';
import plugin, { KVM_SEAMS } from './plugin.js';

/** Fakes for the fds the plugin owns: no /dev/kvm needed. */
async function setup(stop: () => Promise<void>, opts: { memoryAfterVm?: boolean } = {}) {
  const closed: string[] = [];
  const calls: string[] = [];
  const hv = {
    probe: () => ({ maxVcpus: 1, maxMemorySlots: 8 }),
    requireCapabilities: () => {},
    close: () => {
      closed.push('hv');
    },
    createKvmVm: () => ({
      createIrqChip: () => {
        calls.push('createIrqChip');
      },
      setMemorySlot: (slot: { slot: number; guestAddress: bigint }) => {
        calls.push(`setMemorySlot ${slot.slot} 0x${slot.guestAddress.toString(16)}`);
      },
      close: () => {
        closed.push('vm');
      },
    }),
  };
  const runner = { events: { on: () => {} }, stop, stats: {} };
  const c = root.createChildContainer();
  c.register(Tokens.Bus.token, { useValue: {} as never });
  c.register(Tokens.EventLoop.token, { useValue: {} as never });
  c.register(KVM_SEAMS, {
    useValue: {
      hypervisor: () => hv as unknown as KvmHypervisor,
      runner: () => runner as unknown as WorkerVcpuRunner,
    },
  });
  c.register(Tokens.Lifecycle.token, { useValue: new VmLifecycle() });
  // the real manifest, enforced: the plugin injects nothing it does not declare
  const manifestPath = join(buildLocations().repoRoot, 'plugins', 'kvm', 'vmm-plugin.json');
  const d = await registerPluginInstance(
    c,
    plugin,
    {
      config: KvmConfigSchema.parse({}),
      vm: {} as never,
      lifecycle: new VmLifecycle(),
      baseDir: '.',
      instance: 'kvm',
      logger: silentLogger(),
    },
    { manifest: readManifestFile(manifestPath), manifestPath, enforce: true },
  );
  const memory = {
    regions: [{ range: { start: { value: 0n }, length: 0x10000n }, hostAddress: 0x7000_0000n, readOnly: false }],
  };
  if (!opts.memoryAfterVm) c.register(Tokens.GuestMemory.token, { useValue: memory as never });
  c.resolve(Tokens.Vm.token);
  if (opts.memoryAfterVm) c.register(Tokens.GuestMemory.token, { useValue: memory as never });
  c.resolve(Tokens.VcpuRunner.token);
  return { d, closed, calls };
}

describe('plugins/kvm plugin: one owner of memory slots and irqchip', () => {
  it('creates the irqchip and maps GuestMemory when it creates the Vm', async () => {
    expect((await setup(async () => {})).calls).to.deep.equal(['createIrqChip', 'setMemorySlot 0 0x0']);
  });

  it('maps GuestMemory registered after the Vm was made when the runner is built, once', async () => {
    const s = await setup(async () => {}, { memoryAfterVm: true });
    expect(s.calls).to.deep.equal(['createIrqChip', 'setMemorySlot 0 0x0']);
  });
});

describe('plugins/kvm plugin dispose', () => {
  it('resolves only after the runners stopped and the Vm and /dev/kvm fds are closed', async () => {
    let release!: () => void;
    let stopping!: () => void;
    const stopCalled = new Promise<void>((r) => {
      stopping = r;
    });
    let closedAtRelease: string[] | undefined;
    const s = await setup(
      () =>
        new Promise<void>((r) => {
          stopping();
          release = () => {
            closedAtRelease = [...s.closed];
            r();
          };
        }),
    );
    let closedWhenDisposed: string[] | undefined;
    const all = Promise.all(
      s.d.map(async (x) => {
        await (x.dispose() as unknown);
      }),
    ).then(() => {
      closedWhenDisposed = [...s.closed];
    });
    await stopCalled; // the runner is stopping; it finishes only when released
    expect(closedWhenDisposed, 'dispose resolved while a runner was still stopping').to.equal(undefined);
    release();
    await all;
    expect(closedAtRelease, 'fds closed under a running worker').to.deep.equal([]);
    expect(closedWhenDisposed).to.deep.equal(['vm', 'hv']);
  });

  it('closes the fds and resolves when a runner fails to stop (no unhandled rejection)', async () => {
    const s = await setup(() => Promise.reject(new Error('worker gone')));
    for (const x of s.d) await (x.dispose() as unknown);
    expect(s.closed).to.deep.equal(['vm', 'hv']);
  });
});
