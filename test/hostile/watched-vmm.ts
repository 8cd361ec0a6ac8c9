/**
 * How the hostile linux tests run their VMM: bin/vmm.js as users start it, its resident size read when the guest
 * prints `hostile-rss-before` / `hostile-rss-after` (then a line typed on the console, which the guest reads back),
 * and a deadline under the tier runner's watchdog after which the VMM is asked for evidence and killed.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { endedWithin, spawnVmm, type VmmEnd } from '../guest/guest-vm.js';

/** VmRSS of a process in kB (NaN when /proc does not say). */
export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** How a watched VMM ended: its end, VmRSS (kB) at the two marks, and a tail to print on failure. */
export interface WatchedEnd {
  r: VmmEnd;
  rss: { before?: number; after?: number };
  /** Exit, the last 6000 characters of output and, after the deadline, the VMM's thread states and report. */
  tail: string;
}

/** Runs `bin/vmm.js run <configFile>` in `dir` until it ends or `deadlineMs` passes (then killed, with evidence). */
export async function runWatchedVmm(configFile: string, dir: string, deadlineMs: number): Promise<WatchedEnd> {
  const rss: { before?: number; after?: number } = {};
  const vmm = spawnVmm(configFile, {
    cwd: dir,
    stdin: true,
    onOutput: (stdout, child) => {
      for (const mark of ['before', 'after'] as const) {
        if (rss[mark] === undefined && new RegExp(`^hostile-rss-${mark}\\r?$`, 'm').test(stdout)) {
          rss[mark] = rssKb(child.pid!);
          child.stdin!.write(`typed-${mark}\n`);
        }
      }
    },
  });
  const r = await endedWithin(vmm, deadlineMs);
  const evidence = r.evidence && `\nthe VMM at the ${deadlineMs / 1000} s deadline:\n${r.evidence}`;
  return { r, rss, tail: `exit ${r.code} ${r.signal}; output tail:\n${r.text.slice(-6000)}${evidence}` };
}

/** The two disks of a hostile test in `dir`: a 1 MiB victim starting "VICTIM!!", a 4 MiB random witness. */
export function hostileDisks(dir: string): { victim: string; witness: string; witnessBytes: Buffer } {
  const victim = path.join(dir, 'victim.img');
  const witness = path.join(dir, 'witness.img');
  const v = Buffer.alloc(1 << 20);
  v.write('VICTIM!!', 0, 'latin1');
  fs.writeFileSync(victim, v);
  const witnessBytes = randomBytes(4 << 20);
  fs.writeFileSync(witness, witnessBytes);
  return { victim, witness, witnessBytes };
}

/** md5 of some bytes, hex (what the guest's md5sum prints). */
export const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

/** Where (bytes) the guest writes 16 pages to the witness after the attacks. */
export const WITNESS_AT = 100 * 4096;

/**
 * The witness disk kept working through the attacks: the guest read the same bytes before and after, and its
 * write after them (16 pages at WITNESS_AT) reached the file; the console answered typed input before and after.
 */
export function expectWitnessIntact(
  res: Map<string, string>,
  witness: string,
  witnessBytes: Uint8Array,
  tail: string,
): void {
  expect(res.get('witness-md5-before'), tail).to.equal(md5(witnessBytes));
  expect(res.get('witness-md5-after'), tail).to.equal(md5(witnessBytes));
  expect(res.get('witness-write'), tail).to.equal('0');
  const written = fs.readFileSync(witness).subarray(WITNESS_AT, WITNESS_AT + 16 * 4096);
  expect(md5(written), 'the witness write reached its file').to.equal(res.get('witness-write-md5'));
  expect(res.get('typed-before'), tail).to.equal('typed-before');
  expect(res.get('typed-after'), tail).to.equal('typed-after');
}
