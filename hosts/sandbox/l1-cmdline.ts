/**
 * Words L1's kernel command line gets beyond the fixed ones (console, panic, TSC): the THP mode asked for, then the
 * experiment's `TSVMM_SANDBOX_APPEND`.
 *
 * `TSVMM_SANDBOX_L1_THP=always|madvise|never` sets L1's transparent huge pages (unset: the kernel's default,
 * `always`); an experiment's own `transparent_hugepage=` word in `TSVMM_SANDBOX_APPEND` wins. Session 10 made `never`
 * the default on the hypothesis that the L2 triple faults come from TCG's nested SVM mishandling the NPT
 * invalidations of THP splits and collapses under the guest's RAM; the same day's fresh-clone CI under `never` had one
 * L2 triple fault (crash.linux) and one L1 freeze (devices.linux), as often as under `always`, so the kernel's
 * default is back and the knob stays for studies (hosts/sandbox/README.md "Known problem").
 */
import { SandboxError } from './errors.js';

/** The extra words for L1's command line (leading space included when there are any). */
export function l1ExtraWords(env: NodeJS.ProcessEnv = process.env): string {
  const append = env.TSVMM_SANDBOX_APPEND?.trim() ?? '';
  const thp = env.TSVMM_SANDBOX_L1_THP;
  if (thp && !['always', 'madvise', 'never'].includes(thp))
    throw new SandboxError('Config', `TSVMM_SANDBOX_L1_THP must be always, madvise or never, not '${thp}'`, {});
  const words = !thp || /(^|\s)transparent_hugepage=/.test(append) ? [append] : [`transparent_hugepage=${thp}`, append];
  return words
    .filter(Boolean)
    .map((w) => ` ${w}`)
    .join('');
}
