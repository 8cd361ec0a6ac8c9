/**
 * Shared set-up of the fuzz targets in this folder (one file per target, `*.fuzz.test.ts`, run in the
 * unit tier). Property-based with fast-check: Jazzer.js 4 (the coverage-guided npm fuzzer) ships a
 * native module built against glibc 2.38, which Debian bookworm (2.36) cannot load, so no
 * coverage-guided fuzzer serves here.
 *
 * - `TSVMM_FUZZ_RUNS` sets the cases per target (default 10,000; `TSVMM_FUZZ_RUNS=1000000 npm run fuzz`
 *   for a long run); `TSVMM_SEED` replays a run (the seed is in every target's test title and in
 *   fast-check's failure message, with the path of the failing case).
 * - `expectOnly` is the main invariant: the module's own error class is the only thing that escapes.
 */
import { expect } from 'chai';
import fc from 'fast-check';

/** Cases per target in this run. */
export function fuzzRuns(): number {
  const n = Number(process.env.TSVMM_FUZZ_RUNS ?? 10_000);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`TSVMM_FUZZ_RUNS must be a positive integer, not ${process.env.TSVMM_FUZZ_RUNS}`);
  return n;
}

const seed = (() => {
  const s = process.env.TSVMM_SEED;
  if (s !== undefined && s !== '') {
    const n = Number(s);
    if (!Number.isInteger(n)) throw new Error(`TSVMM_SEED must be an integer, not ${s}`);
    return n | 0;
  }
  return (Math.random() * 2 ** 31) | 0;
})();

/** The seed every target of this process uses (from TSVMM_SEED, else random). */
export function fuzzSeed(): number {
  return seed;
}

/** `name (N cases, seed S)`: the test title, so every report names the seed to replay. */
export function fuzzTitle(name: string, runs = fuzzRuns()): string {
  return `${name} (${runs} cases, seed ${seed}; replay: TSVMM_SEED=${seed})`;
}

/** fast-check parameters for one target: the run's seed and case count, the failing case printed in full. */
export function fuzzParams<T>(extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  return { numRuns: fuzzRuns(), seed, endOnFailure: false, verbose: 1, ...extra };
}

/** Mocha timeout for a target whose cases cost about `msPerCase` each (generous: the machine is shared). */
export function fuzzTimeout(msPerCase: number): number {
  return Math.max(120_000, fuzzRuns() * msPerCase * 10);
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Runs `fn`; anything it throws must be an instance of one of `allowed` (the module's own error
 * type) with a message on one line. Returns the error, or undefined when `fn` returned.
 */
export function expectOnly(allowed: ErrorClass[], fn: () => void): Error | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    checkEscaped(allowed, e);
    return e as Error;
  }
}

/** Async form of expectOnly. */
export async function expectOnlyAsync(allowed: ErrorClass[], fn: () => Promise<unknown>): Promise<Error | undefined> {
  try {
    await fn();
    return undefined;
  } catch (e) {
    checkEscaped(allowed, e);
    return e as Error;
  }
}

function checkEscaped(allowed: ErrorClass[], e: unknown): void {
  if (!allowed.some((c) => e instanceof c)) {
    const what = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e);
    expect.fail(`only ${allowed.map((c) => c.name).join(' or ')} may escape, got ${what}`);
  }
  expect((e as Error).message, 'error message').to.not.equal('');
  expect((e as Error).message.includes('\n'), `one-line error message: ${(e as Error).message}`).to.equal(false);
}

/** Counts outcomes, so a target can show its generator reaches both success and rejection. */
export class Outcomes {
  readonly counts = new Map<string, number>();
  add(what: string): void {
    this.counts.set(what, (this.counts.get(what) ?? 0) + 1);
  }
  get(what: string): number {
    return this.counts.get(what) ?? 0;
  }
  toString(): string {
    return [...this.counts].map(([k, v]) => `${k} ${v}`).join(', ');
  }
}

/**
 * Prints what a target's cases came to (one line) and, on runs of at least 1,000 cases, checks the
 * generator reached `mustReach` and at least `minKinds` different outcomes: a target whose inputs are
 * all rejected at the first check (or never rejected) proves little.
 */
export function reportOutcomes(target: string, o: Outcomes, mustReach: string[], minKinds = 2): void {
  process.stdout.write(`      fuzz ${target}: ${o}\n`);
  if (fuzzRuns() < 1000) return;
  for (const m of mustReach) expect(o.get(m), `${m} never reached: ${o}`).to.be.greaterThan(0);
  expect(o.counts.size, `outcomes: ${o}`).to.be.at.least(minKinds);
}

/** Resident set size in MiB now. */
export function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

/**
 * `arb`'s value in one case of `oneIn`, undefined otherwise. (fast-check's `fc.option(arb, { freq })` is the
 * other way round: it gives undefined in one case of `freq`.)
 */
export function sometimes<T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
}
