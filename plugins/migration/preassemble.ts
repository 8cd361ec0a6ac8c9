import type { VmPlan } from '../../core/vmm/plan.js';

/**
 * The plugins a migration's destination may build before the source stopped: assembling them takes no host
 * resource the source still holds (an image lock, a tap, a back end's socket, a listening socket's path), or takes it
 * only once the source let go (core/vmm/incoming.ts), so both VMs can exist at once. Each entry says for which of
 * its configs that holds. Any other plugin in the config makes the destination build its VM after Commit instead
 * (the source released its files then), as before: slower (assembly counts in the downtime) but safe. The
 * migration plugin is here because a received VM's control socket listens only once the source released it.
 */
const PREASSEMBLE_SAFE: Record<string, (config: unknown) => boolean> = {
  kvm: () => true,
  x86: () => true,
  acpi: () => true,
  pci: () => true,
  'pci-hotplug': () => true,
  // transports: MMIO/PCI windows and KVM routes only
  'virtio-mmio': () => true,
  'virtio-pci': () => true,
  // disk formats: they only register how to read images
  'raw-disk': () => true,
  qcow: () => true,
  // a disk: described at once (no lock), opened and locked once the source let go (virtio-blk's LateDisk), for the
  // formats of this repository that can describe an image (a format picked by probe is one of those registered)
  'virtio-blk': (config) => {
    const format = (config as { format?: unknown } | undefined)?.format;
    return format === undefined || format === 'auto' || format === 'raw' || format === 'qcow2';
  },
  // a NIC on a named tap: opened once the source let go (virtio-net's LateBackend; backends/open.ts opensLate)
  'virtio-net': (config) => {
    const b = (config as { backend?: { kind?: unknown; name?: unknown; fds?: unknown } } | undefined)?.backend;
    return b?.kind === 'tap' && b.fds === undefined && typeof b.name === 'string' && !b.name.includes('%');
  },
  i8042: () => true,
  rtc: () => true,
  'boot-timer': () => true,
  'virtio-rng': () => true,
  migration: () => true,
  // a stdio console or none; a file or unix-socket console is a path the source still has open
  serial: (config) => {
    const kind = (config as { console?: { kind?: unknown } } | undefined)?.console?.kind;
    return kind === undefined || kind === 'stdio' || kind === 'none';
  },
};

/** Whether every plugin of `plan` is one of this repository's that may be assembled while the source still runs. */
export function canPreassemble(plan: Pick<VmPlan, 'plugins'>): boolean {
  return plan.plugins.every(
    (p) => p.plugin.source === 'repo' && PREASSEMBLE_SAFE[p.plugin.manifest.name]?.(p.config) === true,
  );
}
