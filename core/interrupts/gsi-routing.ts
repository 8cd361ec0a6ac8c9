import type { GsiRoute, Vm } from '../hypervisor/hypervisor.js';

/**
 * The VM's one GSI routing table. A hypervisor write (KVM_SET_GSI_ROUTING) replaces the whole
 * table, so this is its only writer: the platform's irqchip pin routes plus one MSI route per
 * GSI that carries one. Nothing is written while no MSI route was ever set (the hypervisor's
 * default table, which equals the irqchip routes, stays); a commit that changes nothing writes nothing.
 */
export class GsiRoutingTable {
  private readonly msi = new Map<number, GsiRoute>();
  private written: string | undefined;

  constructor(
    private readonly irqchipRoutes: () => readonly GsiRoute[],
    private readonly vm: () => Vm | undefined,
  ) {}

  /** Sets or clears the MSI route of `gsi` (takes effect at the next commit). */
  setMsi(gsi: number, route: { address: bigint; data: number; devid?: number } | undefined): void {
    if (route) this.msi.set(gsi, { gsi, kind: 'msi', ...route });
    else this.msi.delete(gsi);
  }

  /** The table as the next commit writes it: irqchip routes first, then MSI routes by GSI. */
  routes(): GsiRoute[] {
    return [...this.irqchipRoutes(), ...[...this.msi.values()].sort((a, b) => a.gsi - b.gsi)];
  }

  /** Writes the table to the VM when it differs from the last write (and ever held an MSI route). */
  commit(): void {
    if (this.written === undefined && this.msi.size === 0) return;
    const vm = this.vm();
    if (!vm) return;
    const routes = this.routes();
    const key = JSON.stringify(routes, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v));
    if (key === this.written) return;
    vm.setGsiRouting(routes);
    this.written = key;
  }
}
