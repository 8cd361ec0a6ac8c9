import { VmInterrupts } from '../interrupts/vm-interrupts.js';
import type { Interrupts, LegacyIrq, LegacyIrqOptions, MsiGroup, MsiGroupOptions } from '../interrupts/interrupts.js';
import type { PlatformLayout } from '../platform/layout.js';
import { PlatformResources } from '../platform/platform-resources.js';
import { FakeEventFdFactory } from './manual-event-loop.js';
import { MockHypervisor, type MockVm } from './mock-hypervisor.js';
import { testPlatformLayout } from './test-layout.js';

/**
 * The Interrupts test double: the real service (same lines, masks, pending bits) over a
 * MockVm without irqfds, so every interrupt is visible as a recorded line change or MSI.
 * `resources` is the PlatformResources it allocates from (register it as Resources too).
 */
export class RecordingInterrupts implements Interrupts {
  readonly resources: PlatformResources;
  readonly vm: MockVm;
  readonly hypervisor = new MockHypervisor();
  private readonly inner: VmInterrupts;

  constructor(opts: { layout?: PlatformLayout; irqfd?: boolean } = {}) {
    this.resources = new PlatformResources(opts.layout ?? testPlatformLayout());
    this.vm = this.hypervisor.createVm();
    (this.vm.capabilities as { irqfd: boolean }).irqfd = opts.irqfd ?? false;
    this.inner = new VmInterrupts({ resources: this.resources, vm: () => this.vm, eventFds: new FakeEventFdFactory() });
  }

  legacy(opts: LegacyIrqOptions): LegacyIrq {
    return this.inner.legacy(opts);
  }

  msiGroup(opts: MsiGroupOptions): MsiGroup {
    return this.inner.msiGroup(opts);
  }

  /** The line's level as last driven (false for a line never driven). */
  level(gsi: number): boolean {
    return this.vm.irqLines.get(gsi) ?? false;
  }

  /** Every level change of `gsi` in order (a pulse is true then false). */
  levels(gsi: number): boolean[] {
    return this.hypervisor
      .callsTo('vm', 'setIrqLine')
      .filter((c) => c.args[0] === gsi)
      .map((c) => c.args[1] as boolean);
  }

  /** Who holds which interrupt line ('irq' space), the platform's own reservations included. */
  lines(): Map<number, string> {
    return new Map(this.resources.allocations('irq').map((a) => [a.number, a.owner]));
  }

  /** MSI messages delivered, in order. */
  get msis(): readonly { address: bigint; data: number }[] {
    return this.vm.msis;
  }
}
