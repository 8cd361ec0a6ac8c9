/**
 * Words L1's kernel command line gets beyond the fixed ones (console, panic, TSC): the L1 configuration's own
 * defaults, then the experiment's `TSVMM_SANDBOX_APPEND`.
 *
 * `transparent_hugepage=never` by default (`TSVMM_SANDBOX_L1_THP=always|madvise|never` picks another mode): L1's
 * kernel defaults to THP `always`, so the L2 guest's RAM under our VMM is backed by huge pages that L1 splits and
 * collapses while the guest runs (khugepaged, a balloon or madvise giving pages back), each change an NPT
 * invalidation that TCG's nested SVM emulation must get right on every vCPU. The L2 triple faults of the linux
 * tier came where L1's memory churned under the VMM (hosts/sandbox/README.md "Known problem"); with THP off L1 maps
 * the guest's RAM with 4 KiB pages only. An experiment's own `transparent_hugepage=` word wins.
 */
import { SandboxError } from './errors.js';

/** L1's THP mode unless the environment says otherwise. */
export const L1_THP_DEFAULT = 'never';

/** The extra words for L1's command line (leading space included when there are any). */
export function l1ExtraWords(env: NodeJS.ProcessEnv = process.env): string {
  const append = env.TSVMM_SANDBOX_APPEND?.trim() ?? '';
  const thp = env.TSVMM_SANDBOX_L1_THP || L1_THP_DEFAULT;
  if (!['always', 'madvise', 'never'].includes(thp))
    throw new SandboxError('Config', `TSVMM_SANDBOX_L1_THP must be always, madvise or never, not '${thp}'`, {});
  const words = /(^|\s)transparent_hugepage=/.test(append) ? [append] : [`transparent_hugepage=${thp}`, append];
  return words
    .filter(Boolean)
    .map((w) => ` ${w}`)
    .join('');
}
