/**
 * `node dist/hosts/sandbox/freeze-ledger.js [--logs DIR]... [--ledger FILE] [--json]`: what the evidence says about
 * L1 freezes (issue 19 bug 4). It reads the logs of earlier runs in each DIR (default /tmp: `*.log` files with the
 * linux tier's or the bench's output, `*study*.jsonl` from freeze-study.ts; a file's day is its modification time)
 * and the L1 boot ledger (ledger.ts; default $TSVMM_L1_LEDGER or ~/.cache/tsvmm/l1-boots.jsonl), and prints L1 boots,
 * L1 hours and freezes by source, configuration and day, with exact 95 % intervals, and each freeze with what ran.
 * Reads only; a boot seen in two logs (a log copied or tee'd twice) counts once.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  benchBoots,
  freezeRate,
  ledgerBoots,
  ratesBy,
  runStops,
  studyBoots,
  tierBoots,
  type BootEvidence,
  type FreezeRate,
} from './freeze-evidence.js';
import { FREEZE_OUTCOMES, ledgerPath, readLedger } from './ledger.js';

/** Every boot the logs in `dir` show (tier, bench, study; `run` stops separately). */
export function scanLogs(dir: string): { boots: BootEvidence[]; runStops: BootEvidence[]; files: number } {
  const boots: BootEvidence[] = [];
  const stops: BootEvidence[] = [];
  const seen = new Set<string>();
  let files = 0;
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const isLog = name.endsWith('.log');
    const isStudy = /study.*\.jsonl$/.test(name);
    if (!isLog && !isStudy) continue;
    let text: string;
    let date: string;
    try {
      const st = statSync(path);
      if (!st.isFile() || st.size > 64 << 20) continue;
      text = readFileSync(path, 'utf8');
      date = st.mtime.toISOString().slice(0, 10);
    } catch {
      continue;
    }
    // the same run tee'd into two files: its summary lines are identical
    const fingerprint = [...text.matchAll(/^linux: \d+ passed.*$|bench: \S+ sandbox: \d+ s$/gm)].join('|');
    if (fingerprint && seen.has(fingerprint)) continue;
    if (fingerprint) seen.add(fingerprint);
    const found = isStudy
      ? studyBoots(text, path, date)
      : [...tierBoots(text, path, date), ...benchBoots(text, path, date)];
    if (found.length) files++;
    boots.push(...found);
    if (isLog) stops.push(...runStops(text, path, date));
  }
  return { boots, runStops: stops, files };
}

const fmt = (r: FreezeRate): string =>
  `${String(r.boots).padStart(4)} boots ${String(r.freezes).padStart(3)} froze  ` +
  `${(r.perBoot * 100).toFixed(1).padStart(5)} % a boot (95 %: ${(r.perBootInterval[0] * 100).toFixed(1)}–` +
  `${(r.perBootInterval[1] * 100).toFixed(1)} %)  ${r.hours.toFixed(1).padStart(5)} L1-h  ` +
  `${r.perHour.toFixed(2)} a L1-hour${r.unknown ? `  (+${r.unknown} of unknown end)` : ''}`;

function main(): void {
  const { values } = parseArgs({
    options: {
      logs: { type: 'string', multiple: true },
      ledger: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const dirs = values.logs?.length ? values.logs : ['/tmp'];
  const boots: BootEvidence[] = [];
  const stops: BootEvidence[] = [];
  let files = 0;
  for (const d of dirs) {
    const s = scanLogs(d);
    boots.push(...s.boots);
    stops.push(...s.runStops);
    files += s.files;
  }
  const lp = values.ledger ?? ledgerPath();
  const ledger = readLedger(lp);
  boots.push(...ledgerBoots(ledger.records, lp ?? ''));
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ boots, runStops: stops, total: freezeRate(boots) }, null, 1)}\n`);
    return;
  }
  const say = (s: string) => process.stdout.write(`${s}\n`);
  say(
    `L1 boots in ${files} log file(s) under ${dirs.join(', ')} and ${ledger.records.length} ledger record(s) (${lp})`,
  );
  say(`all:                 ${fmt(freezeRate(boots))}`);
  for (const [title, key] of [
    ['by source', (b: BootEvidence) => b.source],
    ['by configuration', (b: BootEvidence) => b.label],
    ['by day', (b: BootEvidence) => b.date],
  ] as const) {
    say(title);
    for (const g of ratesBy(boots, key)) say(`  ${g.key.padEnd(50).slice(0, 50)} ${fmt(g.rate)}`);
  }
  say('freezes (frozen, silent, panicked):');
  for (const b of boots.filter((x) => (FREEZE_OUTCOMES as readonly string[]).includes(x.outcome)))
    say(`  ${b.date} ${b.source} ${b.outcome} after ${b.seconds ?? '?'} s, running ${b.running ?? '?'} (${b.file})`);
  say('other stops (timeout, failed, aborted):');
  for (const b of boots.filter((x) => !['finished', 'unknown', ...FREEZE_OUTCOMES].includes(x.outcome)))
    say(`  ${b.date} ${b.source} ${b.outcome}: ${b.reason ?? '?'} (${b.file})`);
  if (stops.length) {
    say('`vmm run --sandbox` stops (no denominator: a run that ended well leaves no line):');
    for (const b of stops) say(`  ${b.date} ${b.outcome}: ${b.reason} (${b.file})`);
  }
  if (ledger.skipped) say(`(${ledger.skipped} ledger line(s) skipped: not records)`);
}

if (process.argv[1]?.endsWith('freeze-ledger.js')) main();
