/**
 * The sandbox kernel's own log (/dev/kmsg) for the linux tier: when a test file fails inside L1, the
 * lines L1's kernel logged while it ran (KVM's complaints about the nested guest, lockups, oopses) are the
 * evidence that tells "our VMM" from "L1 / TCG's nested SVM". Read with O_NONBLOCK: each read() returns one
 * record `prio,seq,usec,flags;text`, and EAGAIN ends the buffer.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';

/** One kernel log record: its sequence number, syslog priority (0 emerg .. 7 debug) and text. */
export interface KernelRecord {
  seq: number;
  prio: number;
  text: string;
}

/** Parses one /dev/kmsg record (`prio,seq,usec,flags[,...];text\n continuation...`); undefined if malformed. */
export function parseKmsgRecord(raw: string): KernelRecord | undefined {
  const semi = raw.indexOf(';');
  if (semi < 0) return undefined;
  const [prio, seq] = raw.slice(0, semi).split(',');
  const p = Number(prio);
  const s = Number(seq);
  if (!Number.isInteger(p) || !Number.isInteger(s)) return undefined;
  // continuation lines (" KEY=value") carry device metadata, not text
  const text = raw.slice(semi + 1).split('\n')[0] ?? '';
  return { seq: s, prio: p & 7, text };
}

/** Every record still in the kernel's buffer; [] where /dev/kmsg cannot be read (not root, no such file). */
export function readKernelLog(path = '/dev/kmsg'): KernelRecord[] {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return [];
  }
  const out: KernelRecord[] = [];
  const buf = Buffer.alloc(8192);
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // EPIPE: records were overwritten under us; the next read goes on from the oldest kept one
        if (code === 'EPIPE') continue;
        break; // EAGAIN: the end; anything else: give up with what was read
      }
      if (n === 0) break;
      const r = parseKmsgRecord(buf.toString('utf8', 0, n));
      if (r) out.push(r);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** The sequence number after which later records are new (-1 when the log is empty or unreadable). */
export function kernelLogCursor(records = readKernelLog()): number {
  return records.length > 0 ? records[records.length - 1]!.seq : -1;
}

/**
 * The records logged after `cursor`, as lines for a report: at most `max` (the last ones), each
 * `[L1 kernel <prio>] text`.
 */
export function kernelLogSince(cursor: number, records = readKernelLog(), max = 60): string[] {
  const fresh = records.filter((r) => r.seq > cursor);
  return fresh.slice(-max).map((r) => `[L1 kernel ${r.prio}] ${r.text}`);
}
