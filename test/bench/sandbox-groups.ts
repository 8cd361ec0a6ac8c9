import { GUEST_BENCHES } from './registry.js';
import type { BenchName, GuestBench } from './types.js';

/** Benchmarks that share one sandbox L1 boot: the default L1 (no `sandbox`) or one benchmark's own variant. */
export interface SandboxGroup {
  names: BenchName[];
  /** The L1 variant of the group (GuestBench.sandbox); undefined = the usual microvm L1. */
  sandbox?: GuestBench['sandbox'];
}

/**
 * Splits the names to run in the sandbox into L1 boots: every name of the usual L1 (and `exit`) in one, first,
 * then one boot per selected benchmark that asks for its own L1 variant (e.g. `vfio`: q35 with an IOMMU).
 */
export function sandboxGroups(names: readonly BenchName[], benches = GUEST_BENCHES): SandboxGroup[] {
  const own = benches.filter((b) => b.sandbox && b.names.some((n) => names.includes(n)));
  const ownNames = new Set(own.flatMap((b) => b.names));
  const shared = names.filter((n) => !ownNames.has(n));
  return [
    ...(shared.length ? [{ names: shared }] : []),
    ...own.map((b) => ({ names: b.names.filter((n) => names.includes(n)), sandbox: b.sandbox })),
  ];
}
