import * as fs from 'node:fs';

/** At most this many /proc fd entries are looked at (the scan runs only to word an error). */
const MAX_FDS_SCANNED = 200_000;

/**
 * Names the processes that hold OFD locks on the file `dev`/`ino`, from /proc/<pid>/fd and
 * /proc/<pid>/fdinfo ("lock:" lines), skipping our own `ownFd`. Gives "pid 123 (qemu-io)"
 * words, or says that it could not tell (another user's processes are not visible unless root).
 */
export function describeLockHolders(dev: number, ino: number, ownFd: number): string {
  const found: string[] = [];
  let scanned = 0;
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return 'another process (unknown: /proc is not readable)';
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      if (++scanned > MAX_FDS_SCANNED) break;
      if (Number(pid) === process.pid && Number(fd) === ownFd) continue;
      try {
        const st = fs.statSync(`/proc/${pid}/fd/${fd}`);
        if (st.dev !== dev || st.ino !== ino) continue;
        const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
        if (!/^lock:.*OFDLCK/m.test(info)) continue;
        const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        const who = Number(pid) === process.pid ? 'this process' : `pid ${pid}`;
        found.push(`${who} (${comm}, fd ${fd})`);
      } catch {
        continue; // raced with a close or an exit
      }
    }
  }
  if (found.length === 0) return 'a process this user cannot see (OFD locks carry no pid)';
  return [...new Set(found)].join(', ');
}
