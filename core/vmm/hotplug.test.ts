import { expect } from 'chai';
import * as path from 'node:path';
import type { Disposable } from '../bus/bus.js';
import type { PciAttachment, PciBus, PciBusChange, PciDevice } from '../pci/index.js';
import { pciAddress } from '../pci/index.js';
import { buildLocations } from '../plugin/locations.js';
import { Tokens } from '../tokens.js';
import { pioDeviceEvents } from '../../test/fixtures/pio-device/plugin.js';
import type { IdleMachine } from '../../test/fixtures/idle-machine/plugin.js';
import { assembleVm, type AssembledVm } from './assemble.js';
import { HotplugError, type PciHotplugController } from './hotplug.js';
import { runVm } from './run.js';
import { silentLogger } from './logger.js';

const fixtures = path.join(buildLocations().repoRoot, 'test', 'fixtures');
const logger = silentLogger();
const noDiscovery = { discovery: { pluginDirs: [], nodeModules: [] } };
const device = (id: string, config: Record<string, unknown>) => ({
  path: path.join(fixtures, 'pio-device'),
  id,
  config,
});

/** A PciBus double: slots from 1, onChange as the contract says. */
class FakePciBus implements PciBus {
  readonly plugged: PciAttachment[] = [];
  private readonly listeners = new Set<(c: PciBusChange) => void>();
  add(dev: PciDevice): PciAttachment {
    const a: PciAttachment = {
      address: pciAddress(0, 0, this.plugged.length + 1, 0),
      device: dev,
      dispose: () => {
        this.plugged.splice(this.plugged.indexOf(a), 1);
        this.emit({ kind: 'removed', attachment: a, running: true });
      },
    };
    this.plugged.push(a);
    this.emit({ kind: 'added', attachment: a, running: true });
    return a;
  }
  attachments(): readonly PciAttachment[] {
    return this.plugged;
  }
  onChange(l: (c: PciBusChange) => void): Disposable {
    this.listeners.add(l);
    return { dispose: () => this.listeners.delete(l) };
  }
  private emit(c: PciBusChange): void {
    for (const l of this.listeners) l(c);
  }
}

/** A PciHotplug double: each requestEject waits until the test answers it. */
class FakeHotplug implements PciHotplugController {
  readonly asked: { slot: number; answer: (ok: boolean) => void }[] = [];
  requestEject(a: PciAttachment, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.asked.push({
        slot: a.address.device,
        answer: (ok) => (ok ? resolve() : reject(new Error(`the guest did not eject within ${timeoutMs} ms`))),
      });
    });
  }
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  return expect.fail('expected a rejection');
}

const readPort = (vm: AssembledVm, port: number): number | undefined => {
  const d = new Uint8Array(1);
  return vm.container.resolve(Tokens.Bus.token).read('pio', BigInt(port), d) ? d[0] : undefined;
};

describe('core/vmm/hotplug: devices added to and removed from a running VM', () => {
  let vm: AssembledVm;
  let pci: FakePciBus;
  let hotplug: FakeHotplug;
  beforeEach(async () => {
    pioDeviceEvents.length = 0;
    pci = new FakePciBus();
    hotplug = new FakeHotplug();
    vm = await assembleVm(
      { config: { plugins: [{ path: path.join(fixtures, 'idle-machine') }] } },
      {
        ...noDiscovery,
        logger,
        enforceManifests: true,
        override: (c) => {
          c.register(Tokens.PciBus.token, { useValue: pci });
          c.register(Tokens.PciHotplug.token, { useValue: hotplug });
        },
      },
    );
    await vm.machine!.start();
  });
  afterEach(async () => {
    await vm.dispose();
  });

  it('adds an instance (scope, main by injection, attach), activates its device, removes it again', async () => {
    expect(await vm.addDevice(device('d1', { port: 0x100, value: 0x33 }))).to.deep.equal({ id: 'd1' });
    expect(readPort(vm, 0x100)).to.equal(0x33);
    expect(pioDeviceEvents).to.deep.equal(['activate d1']);
    expect(vm.runtimeDevices()).to.deep.equal(['d1']);
    await vm.removeDevice('d1');
    expect(readPort(vm, 0x100)).to.equal(undefined);
    expect(vm.container.resolve(Tokens.DeviceRegistry.token).get('d1')).to.equal(undefined);
    expect(pioDeviceEvents).to.deep.equal(['activate d1', 'destroy d1']);
    expect(vm.runtimeDevices()).to.deep.equal([]);
    // the id and the port are free again
    await vm.addDevice(device('d1', { port: 0x100 }));
    expect(readPort(vm, 0x100)).to.equal(0x5a);
    expect(vm.lifecycle.state).to.equal('started');
  });

  it('refuses unknown plugins, bad configs, ids in use and failed attaches in one line; nothing stays', async () => {
    await vm.addDevice(device('d1', { port: 0x100 }));
    const cases: [Promise<unknown>, string, RegExp][] = [
      [vm.addDevice({ name: 'no-such-plugin' }), 'UnknownPlugin', /unknown plugin 'no-such-plugin'/],
      [vm.addDevice({ path: '/nonexistent/dir' }), 'UnknownPlugin', /no plugin at '\/nonexistent\/dir'/],
      [vm.addDevice(device('d2', { port: 'x' })), 'BadConfig', /device 'd2'.*config\.port/],
      [vm.addDevice({ name: 'a', path: 'b' } as never), 'BadConfig', /exactly one of name or path/],
      [vm.addDevice(device('d1', { port: 0x101 })), 'Duplicate', /'d1' is already in the VM/],
      [vm.addDevice(device('idle-machine', { port: 0x101 })), 'Duplicate', /'idle-machine'/],
      [vm.addDevice({ path: path.join(fixtures, 'idle-machine'), id: 'm2' }), 'NotAllowed', /provides Machine/],
      [vm.addDevice(device('d3', { port: 0x100 })), 'Attach', /device 'd3' could not be added: .*overlap/i],
    ];
    for (const [p, kind, re] of cases) {
      const e = await rejection(p);
      expect(e, re.source).to.be.instanceOf(HotplugError).with.property('kind', kind);
      expect(e.message).to.match(re).and.not.contain('\n');
    }
    const registry = vm.container.resolve(Tokens.DeviceRegistry.token);
    expect(registry.all().map((d) => d.id)).to.deep.equal(['d1']);
    expect(vm.runtimeDevices()).to.deep.equal(['d1']);
    expect(pioDeviceEvents).to.deep.equal(['activate d1', 'destroy d3']);
    expect(vm.lifecycle.state).to.equal('started');
    const gone = await rejection(vm.removeDevice('d3'));
    expect(gone).to.have.property('kind', 'UnknownDevice');
    expect((await rejection(vm.removeDevice('idle-machine'))).message).to.match(/listed in the config/);
  });

  it('a PCI function is removed only after the guest ejected it; a refused eject leaves the device', async () => {
    await vm.addDevice(device('p1', { port: 0x200, pci: true }));
    expect(pci.plugged.map((a) => a.device.id)).to.deep.equal(['p1']);
    let removed = false;
    const removal = vm.removeDevice('p1', { timeoutMs: 50 }).then(() => (removed = true));
    await new Promise((r) => setImmediate(r));
    expect(hotplug.asked.map((a) => a.slot)).to.deep.equal([1]);
    expect([removed, pci.plugged.length, readPort(vm, 0x200)]).to.deep.equal([false, 1, 0x5a]);
    hotplug.asked[0].answer(false); // the guest did not eject in time
    expect((await rejection(removal)).message).to.match(/did not eject within 50 ms/);
    expect([pci.plugged.length, readPort(vm, 0x200), vm.runtimeDevices()]).to.deep.equal([1, 0x5a, ['p1']]);
    const again = vm.removeDevice('p1');
    await new Promise((r) => setImmediate(r));
    hotplug.asked[1].answer(true);
    await again;
    expect([pci.plugged.length, readPort(vm, 0x200), vm.runtimeDevices()]).to.deep.equal([0, undefined, []]);
  });

  it('VM teardown disposes runtime devices first, without asking the guest', async () => {
    await vm.addDevice(device('p1', { port: 0x200, pci: true }));
    await vm.machine!.stop({ kind: 'api' });
    await vm.dispose();
    expect(hotplug.asked).to.deep.equal([]);
    expect(pci.plugged).to.deep.equal([]);
    expect(pioDeviceEvents).to.deep.equal(['activate p1', 'destroy p1']);
  });

  it('in a VM that has not started, a device is added without activation (the machine activates it)', async () => {
    const idle = await assembleVm(
      { config: { plugins: [{ path: path.join(fixtures, 'idle-machine') }] } },
      { ...noDiscovery, logger },
    );
    try {
      await idle.addDevice(device('early', { port: 0x300 }));
      expect(pioDeviceEvents).to.deep.equal([]);
      await idle.machine!.start();
      expect(pioDeviceEvents).to.deep.equal(['activate early']);
    } finally {
      await idle.dispose();
    }
  });
});

describe('core/vmm/run: signals and the power button', () => {
  const SIG = 'SIGHUP' as NodeJS.Signals; // emitted on `process` by the test, never sent
  const run = (button: IdleMachine['button'], shutdownTimeoutMs: number, onStarted: (m: IdleMachine) => void) =>
    runVm(
      { config: { machine: { shutdownTimeoutMs }, plugins: [{ path: path.join(fixtures, 'idle-machine') }] } },
      {
        ...noDiscovery,
        logger,
        signals: [SIG],
        onStarted: (v) => {
          const m = v.machine as IdleMachine;
          m.button = button;
          onStarted(m);
        },
      },
    );

  it('without a button a signal stops the VM at once (exit 128 + n)', async () => {
    let m: IdleMachine | undefined;
    const r = await run('none', 60_000, (x) => {
      m = x;
      setImmediate(() => process.emit(SIG));
    });
    expect(r).to.deep.equal({ reason: { kind: 'signal', signal: SIG }, exitCode: 129, restarts: 0 });
    expect(m!.presses).to.equal(1);
  });

  it('with a button the guest shuts down itself; the run counts as stopped by the signal', async () => {
    let m: IdleMachine | undefined;
    const r = await run('poweroff', 60_000, (x) => {
      m = x;
      setImmediate(() => process.emit(SIG));
    });
    expect(r.reason).to.deep.equal({ kind: 'signal', signal: SIG });
    expect(m!.presses).to.equal(1);
  });

  it('a guest that ignores the button is stopped after shutdownTimeoutMs; a second signal stops at once', async () => {
    const r = await run('ignore', 1, () => setImmediate(() => process.emit(SIG)));
    expect(r.reason).to.deep.equal({ kind: 'signal', signal: SIG });
    let m2: IdleMachine | undefined;
    const r2 = await run('ignore', 3_600_000, (m) => {
      m2 = m;
      setImmediate(() => {
        process.emit(SIG);
        setImmediate(() => process.emit(SIG));
      });
    });
    expect(r2.reason).to.deep.equal({ kind: 'signal', signal: SIG });
    expect(m2!.presses).to.equal(1, 'the second signal does not press again');
  });
});
