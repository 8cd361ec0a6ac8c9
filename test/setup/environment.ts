/** CI=true (or 1/yes): the run must prove everything, so nothing may be skipped for lack of a tool. */
export const isCi = (env: NodeJS.ProcessEnv = process.env): boolean => /^(true|1|yes)$/i.test(env.CI ?? '');

/**
 * For a test that needs something of the machine (a tool, a kernel header, the guest kit) that is
 * missing: skipped locally, naming `reason`; under CI=true a failure instead, since .ci/run installs
 * everything the tests need.
 */
export function skipUnlessCi(ctx: Mocha.Context, reason: string, env: NodeJS.ProcessEnv = process.env): never {
  if (isCi(env)) throw new Error(`${reason}; under CI=true a missing tool is a failure (.ci/run installs it)`);
  ctx.skip();
}
