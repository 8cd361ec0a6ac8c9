import type { EventFdFactory, EventLoop } from '../events/event-loop.js';
import type { Vm } from '../hypervisor/hypervisor.js';
import type { Logger } from '../logger.js';
import type { Allocation, Resources } from '../platform/resources.js';
import type { InterruptContext } from './context.js';
import { InterruptError } from './errors.js';
import { GsiRoutingTable } from './gsi-routing.js';
import type { Interrupts, LegacyIrq, LegacyIrqOptions, MsiGroup, MsiGroupOptions } from './interrupts.js';
import { VmLegacyIrq } from './legacy-irq.js';
import { MAX_MSI_VECTORS, VmMsiGroup } from './msi-group.js';

/** What VmInterrupts is built from. */
export interface VmInterruptsDeps {
  /** Lines ('irq' space) and MSI GSIs ('msi' space) come from here; the layout gives the irqchip routes. */
  resources: Resources;
  /**
   * The VM, asked on first use (a plugin may create it lazily) and kept once found; undefined
   * or a throw while none exists (unit tests without a hypervisor): interrupts are then dropped.
   */
  vm: () => Vm | undefined;
  eventFds: EventFdFactory;
  eventLoop?: EventLoop;
  logger?: Logger;
}

/**
 * The Interrupts service over the neutral Vm calls (setIrqLine, setGsiRouting,
 * registerIrqfd/unregisterIrqfd, signalMsi). It is the VM's only writer of GSI routing.
 */
export class VmInterrupts implements Interrupts {
  private readonly ctx: InterruptContext;
  private found: Vm | undefined;

  constructor(private readonly deps: VmInterruptsDeps) {
    this.ctx = {
      vm: () => this.vm(),
      eventFds: deps.eventFds,
      eventLoop: deps.eventLoop,
      logger: deps.logger,
      routing: new GsiRoutingTable(
        () => deps.resources.layout.irqchipRoutes,
        () => this.vm(),
      ),
    };
  }

  /** The routing table this service writes (for diagnostics and tests). */
  get routing(): GsiRoutingTable {
    return this.ctx.routing;
  }

  legacy(opts: LegacyIrqOptions): LegacyIrq {
    const { owner } = opts;
    const mode = opts.mode ?? 'edge';
    if (mode !== 'edge' && mode !== 'level')
      throw new InterruptError('Invalid', `'${owner}': trigger mode '${String(mode)}' is not edge or level`);
    const r = this.deps.resources;
    let line: Allocation;
    if (opts.line === undefined) line = r.allocate('irq', { owner });
    else {
      const n = typeof opts.line === 'string' ? r.legacyIrq(opts.line) : opts.line;
      if (!Number.isInteger(n))
        throw new InterruptError('Invalid', `'${owner}': interrupt line ${n} is not an integer`, { owner });
      line = r.reserve('irq', BigInt(n), { owner });
    }
    try {
      return new VmLegacyIrq(owner, mode, line, this.ctx, opts.irqfd ?? false);
    } catch (err) {
      line.dispose();
      throw err;
    }
  }

  msiGroup(opts: MsiGroupOptions): MsiGroup {
    const { owner, count } = opts;
    if (!Number.isInteger(count) || count < 1 || count > MAX_MSI_VECTORS)
      throw new InterruptError('Invalid', `'${owner}' asks for ${count} MSI vectors (1..${MAX_MSI_VECTORS})`, {
        owner,
        count,
      });
    const lines: Allocation[] = [];
    try {
      for (let i = 0; i < count; i++) lines.push(this.deps.resources.allocate('msi', { owner }));
      return new VmMsiGroup(owner, lines, this.ctx, opts.devid, opts.irqfd ?? true);
    } catch (err) {
      for (const l of lines) l.dispose();
      throw err;
    }
  }

  private vm(): Vm | undefined {
    if (this.found) return this.found;
    try {
      this.found = this.deps.vm();
    } catch {
      this.found = undefined;
    }
    return this.found;
  }
}
