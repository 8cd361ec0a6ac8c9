import * as fs from 'node:fs';

/** VmRSS of a process in kB (NaN when /proc does not say). */
export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
