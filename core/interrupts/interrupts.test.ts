import { expect } from 'chai';
import { PlatformError } from '../platform/errors.js';
import { PlatformResources } from '../platform/platform-resources.js';
import { FakeEventFdFactory, ManualEventLoop, type FakeEventFd } from '../testing/manual-event-loop.js';
import { MockHypervisor } from '../testing/mock-hypervisor.js';
import { RecordingInterrupts } from '../testing/recording-interrupts.js';
import { testPlatformLayout } from '../testing/test-layout.js';
import { InterruptError } from './errors.js';
import { VmInterrupts } from './vm-interrupts.js';

function setup(irqfd = true) {
  const hv = new MockHypervisor();
  const vm = hv.createVm();
  (vm.capabilities as { irqfd: boolean }).irqfd = irqfd;
  const loop = new ManualEventLoop();
  const fds = new FakeEventFdFactory(loop);
  const resources = new PlatformResources(testPlatformLayout());
  const irqs = new VmInterrupts({ resources, vm: () => vm, eventFds: fds, eventLoop: loop });
  const calls = (m: string) => hv.callsTo('vm', m).map((c) => c.args);
  return { hv, vm, loop, fds, resources, irqs, calls };
}

const MSG_A = { address: 0xfee0_0000n, data: 0x4021 };
const MSG_B = { address: 0xfee0_1000n, data: 0x4022 };

describe('interrupts: legacy lines', () => {
  it('an edge line pulses the irqchip pin; a named line is the layout number; dispose frees it', () => {
    const { irqs, calls, resources } = setup(false);
    const com1 = irqs.legacy({ owner: 'serial', line: 'com1' });
    expect(com1.gsi).to.equal(4);
    com1.trigger();
    expect(calls('setIrqLine')).to.deep.equal([
      [4, true],
      [4, false],
    ]);
    expect(() => irqs.legacy({ owner: 'com3', line: 4 })).to.throw(PlatformError, "held by 'serial'");
    const any = irqs.legacy({ owner: 'virtio' });
    expect(any.gsi).to.equal(5);
    com1.dispose();
    expect(() => com1.trigger()).to.throw(InterruptError, 'was freed');
    expect(irqs.legacy({ owner: 'com3', line: 4 }).gsi).to.equal(4);
    expect(resources.allocations('irq').map((a) => `${a.number}:${a.owner}`)).to.deep.equal([
      '4:com3',
      '5:virtio',
      '8:reserved',
    ]);
  });

  it('a level line follows setLevel and is de-asserted when freed', () => {
    const { irqs, calls } = setup(false);
    const kbd = irqs.legacy({ owner: 'i8042', line: 'keyboard', mode: 'level' });
    kbd.setLevel(true);
    kbd.setLevel(false);
    kbd.setLevel(true);
    kbd.dispose();
    expect(calls('setIrqLine')).to.deep.equal([
      [1, true],
      [1, false],
      [1, true],
      [1, false],
    ]);
  });

  it('with irqfd: trigger writes the eventfd, a level line gets a resample fd whose EOI reaches onResample', () => {
    const { irqs, calls, loop } = setup(true);
    const edge = irqs.legacy({ owner: 'virtio-mmio', irqfd: true });
    const fd = edge.notifier as FakeEventFd;
    expect(calls('registerIrqfd')).to.deep.equal([[fd.fd, 5, undefined]]);
    edge.trigger();
    edge.setLevel(false);
    expect(fd.writes).to.equal(1);
    expect(calls('setIrqLine')).to.deep.equal([]);

    const level = irqs.legacy({ owner: 'intx', mode: 'level', irqfd: true });
    const [, [lfd, gsi, resampleFd]] = calls('registerIrqfd') as [unknown, [number, number, number]];
    expect([lfd, gsi]).to.deep.equal([(level.notifier as FakeEventFd).fd, 6]);
    let eois = 0;
    const sub = level.onResample(() => eois++);
    const resample = loop.watchedFds.includes(resampleFd);
    expect(resample, 'the resample fd is watched').to.equal(true);
    (loop as unknown as { fds: Map<number, FakeEventFd> }).fds.get(resampleFd)!.write(1n); // the hypervisor's EOI
    loop.flush();
    expect(eois).to.equal(1);
    sub.dispose();
    level.dispose();
    expect(calls('unregisterIrqfd')).to.deep.equal([[lfd, 6]]);
    expect(loop.watchedFds.includes(resampleFd)).to.equal(false);
  });

  it('drops interrupts while no VM exists and finds the VM on first use', () => {
    const found: { vm?: ReturnType<MockHypervisor['createVm']> } = {};
    const hv = new MockHypervisor();
    const irqs = new VmInterrupts({
      resources: new PlatformResources(testPlatformLayout()),
      vm: () => found.vm,
      eventFds: new FakeEventFdFactory(),
    });
    const line = irqs.legacy({ owner: 'serial', line: 4, mode: 'level' });
    line.setLevel(true); // no VM yet: dropped
    found.vm = hv.createVm();
    line.setLevel(true);
    expect(hv.callsTo('vm', 'setIrqLine').map((c) => c.args)).to.deep.equal([[4, true]]);
  });
});

describe('interrupts: MSI vector groups', () => {
  it('routes, masks, keeps pending bits and delivers them on unmask (irqfd path)', () => {
    const { irqs, vm, calls } = setup(true);
    const g = irqs.msiGroup({ owner: 'virtio-pci', count: 2 });
    expect([g.vector(0).gsi, g.vector(1).gsi]).to.deep.equal([24, 25]);
    expect(g.vector(0).masked).to.equal(true);
    const fd0 = g.vector(0).notifier as FakeEventFd;

    g.trigger(0); // masked, no message: pending
    expect(g.pending(0)).to.equal(true);
    g.update(0, MSG_A);
    expect(calls('setGsiRouting')).to.deep.equal([], 'a masked vector writes no table');
    g.unmask(0);
    expect(vm.routes.slice(-1)).to.deep.equal([{ gsi: 24, kind: 'msi', ...MSG_A, devid: undefined }]);
    expect(vm.routes.filter((r) => r.kind === 'irqchip')).to.have.length(24, 'the irqchip routes stay in the table');
    expect(vm.irqfds).to.deep.equal([{ fd: fd0.fd, gsi: 24 }]);
    expect(fd0.writes, 'the pending interrupt is delivered on unmask').to.equal(1);
    expect(g.pending(0)).to.equal(false);

    g.trigger(0);
    expect(fd0.writes).to.equal(2);
    g.update(0, MSG_B); // reprogrammed while live: the route follows at once
    expect(vm.routes.slice(-1)).to.deep.equal([{ gsi: 24, kind: 'msi', ...MSG_B, devid: undefined }]);

    g.mask(0);
    expect(vm.irqfds).to.deep.equal([]);
    fd0.write(1n); // a worker signals the notifier while masked
    expect(g.pending(0)).to.equal(true);
    const tables = calls('setGsiRouting').length;
    g.unmask(0);
    expect(calls('setGsiRouting').length, 'an unchanged table is not written again').to.equal(tables);
    expect(fd0.writes).to.equal(4);
    expect(g.vector(0).pending).to.equal(false);

    g.dispose();
    expect(vm.irqfds).to.deep.equal([]);
    expect(vm.routes.every((r) => r.kind === 'irqchip')).to.equal(true);
    expect(fd0.closed).to.equal(true);
    expect(irqs.msiGroup({ owner: 'again', count: 1 }).vector(0).gsi, 'freed GSIs are reused').to.equal(24);
  });

  it('two groups share one routing table with the irqchip routes', () => {
    const { irqs, vm } = setup(true);
    const a = irqs.msiGroup({ owner: 'a', count: 1, devid: 8 });
    const b = irqs.msiGroup({ owner: 'b', count: 1 });
    a.update(0, MSG_A);
    a.unmask(0);
    b.update(0, MSG_B);
    b.unmask(0);
    expect(vm.routes.filter((r) => r.kind === 'msi')).to.deep.equal([
      { gsi: 24, kind: 'msi', ...MSG_A, devid: 8 },
      { gsi: 25, kind: 'msi', ...MSG_B, devid: undefined },
    ]);
    a.dispose();
    expect(vm.routes.filter((r) => r.kind === 'msi').map((r) => r.gsi)).to.deep.equal([25]);
  });

  it('without irqfds: signalMsi while unmasked, pending while masked or unprogrammed', () => {
    const { irqs, vm, calls } = setup(false);
    const g = irqs.msiGroup({ owner: 'dev', count: 1 });
    expect(g.vector(0).notifier).to.equal(undefined);
    g.unmask(0);
    g.trigger(0); // no message yet
    expect(vm.msis).to.deep.equal([]);
    g.update(0, MSG_A); // the message arrives: the pending interrupt goes out
    expect(vm.msis).to.deep.equal([MSG_A]);
    g.mask(0);
    g.trigger(0);
    g.trigger(0);
    expect(g.pending(0)).to.equal(true);
    g.unmask(0);
    expect(vm.msis).to.deep.equal([MSG_A, MSG_A], 'pending is one bit, as in the MSI-X PBA');
    expect(calls('setGsiRouting')).to.deep.equal([]);
  });

  it('refuses bad counts, indices and messages with one-line errors', () => {
    const { irqs } = setup(true);
    expect(() => irqs.msiGroup({ owner: 'x', count: 0 })).to.throw(InterruptError, '(1..2048)');
    const g = irqs.msiGroup({ owner: 'x', count: 2 });
    expect(() => g.trigger(2)).to.throw(InterruptError, "'x' has no MSI vector 2 (0..1)");
    expect(() => g.mask(-1)).to.throw(InterruptError);
    expect(() => g.update(0, { address: 1n << 64n, data: 0 })).to.throw(InterruptError, 'not a 64-bit value');
    expect(() => g.update(0, { address: 0n, data: 2 ** 32 })).to.throw(InterruptError, 'not a 32-bit value');
    g.dispose();
    expect(() => g.trigger(0)).to.throw(InterruptError, 'were freed');
  });

  it('runs out of GSIs cleanly and gives back what it took', () => {
    const l = testPlatformLayout();
    const msi = { range: { start: 24n, end: 40n }, alloc: { start: 24n, end: 40n } };
    const resources = new PlatformResources({ ...l, spaces: { ...l.spaces, msi } });
    const irqs = new VmInterrupts({ resources, vm: () => undefined, eventFds: new FakeEventFdFactory() });
    expect(() => irqs.msiGroup({ owner: 'x', count: 2049 })).to.throw(InterruptError, '(1..2048)');
    const big = irqs.msiGroup({ owner: 'big', count: 10 });
    expect(() => irqs.msiGroup({ owner: 'more', count: 10 })).to.throw(
      PlatformError,
      "no free msi place of 1 (aligned to 1) for 'more'",
    );
    expect(resources.allocations('msi')).to.have.length(10, 'the failed group gave back its GSIs');
    big.dispose();
    expect(resources.allocations('msi')).to.have.length(0);
  });
});

describe('interrupts: RecordingInterrupts test double', () => {
  it('records line levels and MSIs with the real semantics', () => {
    const r = new RecordingInterrupts();
    const line = r.legacy({ owner: 'serial', line: 'com1', mode: 'level' });
    line.setLevel(true);
    expect(r.level(4)).to.equal(true);
    line.setLevel(false);
    expect(r.levels(4)).to.deep.equal([true, false]);
    expect(r.lines().get(4)).to.equal('serial');
    const g = r.msiGroup({ owner: 'dev', count: 1 });
    g.update(0, MSG_A);
    g.unmask(0);
    g.trigger(0);
    expect(r.msis).to.deep.equal([MSG_A]);
  });
});
