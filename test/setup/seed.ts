/** The run's fast-check seed: TSVMM_SEED when set (a replay), else a fresh random 31-bit one. */
export function propertySeed(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.TSVMM_SEED;
  if (given !== undefined && given !== '') {
    const n = Number(given);
    if (!Number.isSafeInteger(n)) throw new Error(`TSVMM_SEED=${given} is not an integer`);
    return n | 0;
  }
  return Math.floor(Math.random() * 0x7fffffff);
}
