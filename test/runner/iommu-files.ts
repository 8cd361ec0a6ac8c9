import { join, relative } from 'node:path';
import { iommuNvmeVariant, nvmePatternOnHost, writeNvmeBacking } from '../../hosts/sandbox/vfio-variant.js';
import type { runLinuxTierInSandbox } from './linux-sandbox.js';
import type { TierOutcome } from './counting.js';
import type { TierReport } from './reporter.js';
import { emptyReport, recount } from './watchdog.js';

/**
 * Linux-tier files that need the sandbox's IOMMU + NVMe variant (hosts/sandbox/vfio-variant.ts): named
 * `*.iommu.linux.test.js`. They run in their own L1 (q35, Intel IOMMU, an NVMe controller bound to
 * vfio-pci), whatever the host, since no host here has an IOMMU and a spare device.
 */
export const isIommuFile = (file: string): boolean => file.endsWith('.iommu.linux.test.js');

/** One outcome of a tier run in two parts (the IOMMU files, the others): counts added, lists joined. */
export function mergeOutcomes(a: TierOutcome, b: TierOutcome): TierOutcome {
  return {
    tier: a.tier,
    passed: a.passed + b.passed,
    failed: a.failed + b.failed,
    skipped: a.skipped + b.skipped,
    note: [a.note, b.note].filter(Boolean).join('; ') || undefined,
    failures: [...a.failures, ...b.failures],
    pendingTests: [...a.pendingTests, ...b.pendingTests],
    retried: [...a.retried, ...b.retried],
    seconds: a.seconds + b.seconds,
  };
}

/**
 * Runs the IOMMU files in one L1 of the variant, the NVMe's namespace a fresh file in `tmp` with known
 * content; afterwards the host checks that the L2 guest's pattern reached that file (a failure of the
 * files otherwise, with their names).
 */
export async function runIommuFiles(
  files: string[],
  o: Parameters<typeof runLinuxTierInSandbox>[1],
  run: typeof runLinuxTierInSandbox,
): Promise<{ report: TierReport; notes: string[] }> {
  if (files.length === 0) return { report: emptyReport(), notes: [] };
  const backing = join(o.tmp, 'vfio-nvme.raw');
  writeNvmeBacking(backing);
  o.write?.(`\nlinux tier: ${files.length} file(s) in the sandbox's IOMMU + NVMe variant (${backing})\n`);
  const r = await run(files, { ...o, tmp: join(o.tmp, 'iommu'), variant: iommuNvmeVariant(backing), maxBoots: 1 });
  const ran = r.report.passes.length > 0 && r.report.failures.length === 0;
  if (ran && !nvmePatternOnHost(backing))
    r.report.failures.push({
      fullTitle: `[host] the NVMe's backing file after ${files.map((f) => relative(o.root, f)).join(', ')}`,
      message: `the L2 guest's pattern is not in ${backing} (its writes did not reach the host file)`,
    });
  return { report: recount(r.report), notes: r.notes };
}
