/** Shared setup of the vfio unit tests: a fake function on a TestPciBus with recording interrupts. */
import type { Disposable } from '../../core/bus/bus.js';
import type { Interrupts, LegacyIrq, LegacyIrqOptions, MsiGroupOptions } from '../../core/interrupts/interrupts.js';
import { FakeEventFdFactory, ManualEventLoop, type FakeEventFd } from '../../core/testing/manual-event-loop.js';
import { MockHypervisor } from '../../core/testing/mock-hypervisor.js';
import { RecordingInterrupts } from '../../core/testing/recording-interrupts.js';
import { TestPciBus } from '../pci/testing.js';
import { VfioPciDevice } from './device.js';
import { VmDeviceMemorySlots } from './slots.js';
import { FakeVfioFunction, type FakeFunctionOptions } from './testing.js';

/** A level line double: records levels, lets the test play the guest's EOI (resample). */
export class FakeLine implements LegacyIrq {
  readonly owner: string;
  readonly mode = 'level' as const;
  readonly gsi = 10;
  readonly notifier = undefined;
  readonly levels: boolean[] = [];
  private readonly resamples = new Set<() => void>();
  constructor(opts: LegacyIrqOptions) {
    this.owner = opts.owner;
  }
  setLevel(level: boolean): void {
    this.levels.push(level);
  }
  trigger(): void {
    this.setLevel(true);
  }
  onResample(cb: () => void): Disposable {
    this.resamples.add(cb);
    return { dispose: () => this.resamples.delete(cb) };
  }
  /** The guest's EOI. */
  eoi(): void {
    for (const cb of [...this.resamples]) cb();
  }
  dispose(): void {}
}

/** Interrupts whose legacy lines are FakeLines and whose MSI groups are RecordingInterrupts' (no irqfds). */
export class TestInterrupts implements Interrupts {
  readonly rec = new RecordingInterrupts();
  readonly lines: FakeLine[] = [];
  legacy(opts: LegacyIrqOptions): LegacyIrq {
    const l = new FakeLine(opts);
    this.lines.push(l);
    return l;
  }
  msiGroup(opts: MsiGroupOptions) {
    return this.rec.msiGroup(opts);
  }
}

/** A fake NVMe-like function passed through and plugged into a TestPciBus. */
export function plugFake(opts: FakeFunctionOptions = {}, withSlots = true) {
  const fn = new FakeVfioFunction('0000:00:03.0', opts);
  const loop = new ManualEventLoop();
  const eventFds = new FakeEventFdFactory(loop);
  const interrupts = new TestInterrupts();
  const hv = new MockHypervisor();
  const vm = hv.createVm();
  const slotCalls = (method: string) => hv.callsTo('vm', method).map((c) => c.args[0]);
  const device = new VfioPciDevice({
    id: 'nvme0',
    device: fn,
    interrupts,
    eventFds,
    loop,
    slots: withSlots ? new VmDeviceMemorySlots(vm) : undefined,
  });
  const bus = new TestPciBus({ interrupts });
  const attachment = bus.add(device);
  /** The device raises `vector` of irq `index`: VFIO writes the eventfd it holds; the loop runs. */
  const fire = (index: number, vector = 0): boolean => {
    const fd = fn.fire(index, vector);
    if (fd === undefined) return false;
    const e = eventFds.created.find((x) => x.fd === fd) as FakeEventFd | undefined;
    if (!e) throw new Error(`VFIO holds fd ${fd}, which is no eventfd of the test`);
    e.write();
    loop.flush();
    return true;
  };
  return { fn, loop, eventFds, interrupts, hv, vm, device, bus, attachment, fire, slotCalls };
}
