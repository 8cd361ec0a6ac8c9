/**
 * `p`, or a rejection naming `what` after `ms`; `onLate` runs first (e.g. kill the VMM, so nothing outlives the
 * test). Linux-tier tests bound every wait with it, well under the runner's per-file watchdog.
 */
export function deadline<T>(p: Promise<T>, ms: number, what: string, onLate: () => void = () => {}): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    t = setTimeout(() => {
      onLate();
      reject(new Error(`${what}: not within ${ms / 1000} s`));
    }, ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(t));
}
