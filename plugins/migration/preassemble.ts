import type { VmPlan } from '../../core/vmm/plan.js';

/**
 * The plugins a migration's destination may build before the source stopped: assembling them takes no host
 * resource the source still holds (an image lock, a tap, a back end's socket, a listening socket's path), so both
 * VMs can exist at once. Each entry says for which of its configs that holds. Any other plugin in the config makes
 * the destination build its VM after Commit instead (the source released its files then), as before: slower
 * (assembly counts in the downtime) but safe. The migration plugin is here because a received VM's control socket
 * listens only once the source released it (see incomingReleased).
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
  // disk formats: virtio-blk opens (and locks) the files, these only register how to read them
  'raw-disk': () => true,
  qcow: () => true,
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

/** Received VMs built early (their config object) -> resolves once the source released its VM. */
const released = new WeakMap<object, Promise<void>>();

/** Marks the VM of `config` (the plan's config object) as received: its control socket waits for `whenReleased`. */
export function markIncoming(config: object, whenReleased: Promise<void>): void {
  released.set(config, whenReleased);
}

/** For a VM built before its source let go (markIncoming): resolves once it did; otherwise undefined. */
export const incomingReleased = (config: object): Promise<void> | undefined => released.get(config);
