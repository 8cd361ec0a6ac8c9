import { readFileSync } from 'node:fs';

/** A VMM process's memory use from /proc/<pid>/smaps, split into guest RAM and the VMM's own overhead (KiB). */
export interface VmmMemory {
  /** Resident set of the whole VMM process, KiB. */
  rssKiB: number;
  pssKiB: number;
  /** Resident part of the guest RAM mapping, KiB. */
  guestRssKiB: number;
  /** rss - guestRss: what the VMM itself keeps resident, KiB. */
  overheadKiB: number;
}

/**
 * Parses /proc/<pid>/smaps text. The guest RAM is taken to be the anonymous (or memfd/shmem)
 * mapping sized between the guest RAM size and that plus 8 MiB with the most resident pages
 * (QEMU and we each map guest RAM as one such region for a VM under 3 GiB).
 */
export function parseSmaps(text: string, guestRamBytes: number): VmmMemory {
  let rss = 0,
    pss = 0,
    guest = 0;
  let size = 0,
    path = '',
    mapRss = 0;
  const flush = () => {
    const anon = path === '' || path.startsWith('[anon') || path.startsWith('/memfd:') || path.startsWith('/dev/zero');
    if (anon && size >= guestRamBytes && size <= guestRamBytes + (8 << 20)) guest = Math.max(guest, mapRss);
  };
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      flush();
      size = parseInt(head[2], 16) - parseInt(head[1], 16);
      path = head[3];
      mapRss = 0;
      continue;
    }
    const f = /^(Rss|Pss):\s+(\d+) kB/.exec(line);
    if (f) {
      const v = Number(f[2]);
      if (f[1] === 'Rss') {
        rss += v;
        mapRss = v;
      } else pss += v;
    }
  }
  flush();
  return { rssKiB: rss, pssKiB: pss, guestRssKiB: guest, overheadKiB: rss - guest };
}

/** The memory use of the live process `pid` whose guest RAM is `guestRamBytes` (reads its smaps; see parseSmaps). */
export function vmmMemory(pid: number, guestRamBytes: number): VmmMemory {
  return parseSmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8'), guestRamBytes);
}
