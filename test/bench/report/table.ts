import { fmt } from '../stats.js';
import type { BenchResults, Row } from '../types.js';

const range = (s: { min: number; median: number; max: number } | undefined): string =>
  s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : '-';

function verdict(r: Row): string {
  if (!r.target || !r.ratio) return '';
  const ok = r.target.op === '<=' ? r.ratio.median <= r.target.value : r.ratio.median >= r.target.value;
  return `${r.target.op === '<=' ? '≤' : '≥'} ${r.target.value} ${ok ? 'met' : 'missed'}`;
}

/** Rows as cells: id, where, unit, ours, peer, ratio, target. */
function cells(r: Row, short = false): string[] {
  const dir = r.better === 'lower' ? '↓' : '↑';
  if (r.na && !r.ratio) {
    const na = short && r.na.length > 100 ? `${r.na.slice(0, 97)}...` : r.na;
    return [
      r.id,
      r.where,
      `${r.unit} ${dir}`,
      r.ours ? range(r.ours) : '-',
      r.peerSummary ? range(r.peerSummary) : '-',
      na,
      '',
    ];
  }
  return [r.id, r.where, `${r.unit} ${dir}`, range(r.ours), range(r.peerSummary), range(r.ratio), verdict(r)];
}

const HEAD = [
  'benchmark',
  'where',
  'unit',
  'ours median (min–max)',
  'peer median (min–max)',
  'ratio ours/peer',
  'target',
];

/** A plain-text table for the console. */
export function consoleTable(res: BenchResults): string {
  const rows = [HEAD, ...res.rows.map((r) => cells(r, true))];
  const w = HEAD.map((_, i) => Math.max(...rows.map((r) => [...r[i]].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c + ' '.repeat(w[i] - [...c].length))
      .join('  ')
      .trimEnd();
  return [line(rows[0]), w.map((n) => '-'.repeat(n)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** The same table in Markdown (README). */
export function markdownTable(res: BenchResults): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${HEAD.join(' | ')} |`,
    `|${HEAD.map(() => '---').join('|')}|`,
    ...res.rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`),
  ].join('\n');
}

/** Who the peers were and where it ran, under the table. */
export function describeRun(res: BenchResults): string {
  const m = res.machine;
  const lines = [
    `machine: ${m.cpuModel}, ${m.cpus} CPUs, ${m.memoryMiB} MiB, Linux ${m.kernel}, KVM: ${m.hostKvm}${m.inSandbox ? ', inside the sandbox' : ''}, load ${m.loadAverage.join(' ')}`,
  ];
  if (res.sandboxMachine) {
    const s = res.sandboxMachine;
    lines.push(
      `sandbox (L1 under QEMU TCG): ${s.cpus} vCPUs, ${s.memoryMiB} MiB, Linux ${s.kernel}, KVM: ${s.hostKvm}`,
    );
  }
  lines.push(`peers: ${m.qemu ?? 'qemu: not found'}; ${m.gcc ?? 'gcc: not found'}; node ${m.node}`);
  const peers = [...new Set(res.rows.filter((r) => r.peer !== '-').map((r) => `${r.bench}: ${r.peer}`))];
  lines.push(...peers.map((p) => `  ${p}`));
  lines.push(
    `${res.repeats} repeats; ratio = ours / peer per repeat (paired), median (min–max); ↓ lower is better, ↑ higher is better`,
  );
  for (const p of res.problems) lines.push(`problem: ${p}`);
  return lines.join('\n');
}
