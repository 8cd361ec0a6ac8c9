/**
 * The writing Linux guest of the migration linux tests (snapshot, clones, live migration): a background writer that
 * keeps putting checksummed 16 KiB pages into its RAM (files in the initramfs root, which lives in guest memory) and
 * one record per page onto /dev/vda (`rec%08d\n` at byte 12 * i), printing `tick=N` every 5 pages; and the final
 * checks (every page's md5, every disk record).
 */

/** Script lines that start the writer in the background (its pid in $W). */
export const WRITER_START = `
mkdir -p /mem
( i=0
  while [ ! -e /mem/stop ]; do
    i=$((i+1))
    head -c 16384 /dev/urandom > /mem/p$i
    md5sum /mem/p$i >> /mem/sums
    printf 'rec%08d\\n' $i | dd of=/dev/vda bs=12 seek=$i conv=notrunc,fsync 2>/dev/null
    echo $i > /mem/last
    [ $((i % 5)) -eq 0 ] && echo "tick=$i"
  done ) &
W=$!
`;

/** Script lines that stop the writer and print `pages=`, `pages-ok=` (md5 matches) and `disk-bad=` (records). */
export const WRITER_CHECK = `
touch /mem/stop
wait $W
n=$(cat /mem/last)
echo "pages=$n"
echo "pages-ok=$(md5sum -c /mem/sums 2>/dev/null | grep -c ': OK$')"
bad=0; j=1
while [ $j -le $n ]; do
  r=$(dd if=/dev/vda bs=12 skip=$j count=1 2>/dev/null)
  [ "$r" = "$(printf 'rec%08d' $j)" ] || bad=$((bad+1))
  j=$((j+1))
done
echo "disk-bad=$bad"
`;

/** The highest `tick=N` a console text shows (0 before the first). */
export const lastTick = (out: string): number =>
  Math.max(0, ...[...out.matchAll(/^tick=(\d+)\r?$/gm)].map((m) => +m[1]!));

/** How many records 1, 2, ... a disk image (raw bytes) holds in a row from the first. */
export function recordsInARow(disk: Uint8Array): number {
  const b = Buffer.from(disk.buffer, disk.byteOffset, disk.length);
  let n = 0;
  while (12 * (n + 2) <= b.length && b.toString('latin1', 12 * (n + 1), 12 * (n + 2)) === recordOf(n + 1)) n++;
  return n;
}

/** Record `i` as the writer puts it on the disk. */
const recordOf = (i: number): string => `rec${String(i).padStart(8, '0')}\n`;
