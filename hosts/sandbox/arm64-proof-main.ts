/**
 * Entry of the arm64 proof's driver inside L1 (arm64-proof.ts):
 * `node dist/hosts/sandbox/arm64-proof-main.js <dir> <kernel Image> [MiB each way]`; TSVMM_ARM64_SECCOMP=log runs the
 * VMMs with `--seccomp log` (to find calls the lists lack) instead of the filters on.
 */
import { runProof } from './arm64-proof.js';

const report = await runProof(
  process.argv[2] ?? '/tsvmm',
  process.argv[3] ?? '/tsvmm/kit/Image',
  process.argv[4] ? Number(process.argv[4]) << 20 : undefined,
  process.env.TSVMM_ARM64_SECCOMP === 'log' ? 'log' : 'true',
);
process.stdout.write(`ARM64-PROOF ${JSON.stringify(report)}\n`);
