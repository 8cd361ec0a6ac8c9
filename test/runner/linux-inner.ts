// Inside the sandbox (L1): node dist/test/runner/linux-inner.js --out <report.json> --file-timeout-s <s> <file>...
// Runs each linux-tier file under its own deadline (watchdog.ts) and writes the merged report.
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import type { TierReport } from './reporter.js';
import { dirname, join, relative, resolve } from 'node:path';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';
import { mochaArgs } from './tiers.js';
import { FILE_END, FILE_START, HEARTBEAT, HEARTBEAT_MS } from './linux-sandbox.js';
import { runFilesWithWatchdog } from './watchdog.js';
import { kernelLogCursor, kernelLogSince } from './kernel-log.js';

const argv = process.argv.slice(2);
let out = '';
let fileTimeoutS = 900;
const files: string[] = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--out') out = argv[++i]!;
  else if (argv[i] === '--file-timeout-s') fileTimeoutS = Number(argv[++i]);
  else files.push(argv[i]!);
}
if (!out || !(fileTimeoutS > 0) || files.length === 0) {
  process.stderr.write('usage: linux-inner --out <report.json> --file-timeout-s <s> <file>...\n');
  process.exit(2);
}
const { root } = projectLayout();
mkdirSync(dirname(out), { recursive: true });
/** Written and synced after every file: a sandbox killed at its time limit still leaves what ran. */
function save(report: TierReport): void {
  const fd = openSync(out, 'w');
  try {
    writeSync(fd, JSON.stringify(report, null, 1));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
let kmsgCursor = -1;
let failuresBefore = 0;
let failuresSoFar = 0;
// the host filters these out; their absence for minutes tells it L1 froze
const heartbeat = setInterval(() => process.stdout.write(`${HEARTBEAT}\n`), HEARTBEAT_MS);
const report = await runFilesWithWatchdog(
  files.map((f) => resolve(root, f)),
  {
    root,
    mochaArgs: (file, rep) => mochaArgs(root, [file], rep, 'linux'),
    workDir: join(dirname(out), 'linux-files'),
    fileTimeoutMs: fileTimeoutS * 1000,
    retryHung: true,
    // markers for the host: which files ended in this boot (a frozen L1 is re-booted for the rest)
    onFileStart: (f) => {
      kmsgCursor = kernelLogCursor();
      failuresBefore = failuresSoFar;
      process.stdout.write(`\n${FILE_START} ${relative(root, f)}\n`);
    },
    onFileDone: (merged, f) => {
      save(merged);
      failuresSoFar = merged.stats.failures;
      // a failed file: what L1's kernel said meanwhile (nested KVM's complaints, lockups) is the evidence
      // that tells our VMM from L1 or TCG's nested SVM
      if (failuresSoFar > failuresBefore) {
        const lines = kernelLogSince(kmsgCursor);
        process.stdout.write(`\nL1's kernel log during ${relative(root, f)} (${lines.length} lines):\n`);
        for (const l of lines) process.stdout.write(`${l}\n`);
      }
      process.stdout.write(`\n${FILE_END} ${relative(root, f)}\n`);
    },
  },
);
clearInterval(heartbeat);
save(report);
process.exitCode = report.stats.failures > 0 ? 1 : 0;
