// Loaded by every mocha run of the tier runner (`--require`, test/runner/tiers.ts mochaArgs).
// Property tests (fast-check) take their seed from here: a new one per run, printed once, so each CI
// run checks other inputs and a failure can be replayed with TSVMM_SEED=<seed>.
import fc from 'fast-check';
import { propertySeed } from './seed.js';

const seed = propertySeed();
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
process.stdout.write(`property tests: fast-check seed ${seed} (replay with TSVMM_SEED=${seed})\n`);
