/*
 * guestio: the guest kit's workload program (static: the guest has busybox and no libc).
 * Every block it writes describes itself, so the host can check a disk image afterwards:
 *   bytes  0..7   "TSVMMBLK"
 *   bytes  8..15  block number (u64 LE)
 *   bytes 16..23  version: how many times this block was written (u64 LE, >= 1)
 *   bytes 24..31  seed (u64 LE)
 *   bytes 32..    32-bit xorshift words seeded with mix(seed, block, version) (blockWords in
 *                 hosts/guestkit/guest-blocks.ts is the host's copy)
 * Commands (each prints KEY=VALUE lines for the test to read):
 *   guestio stress DEV SPAN_MIB THREADS DEPTH OPS SEED
 *       THREADS threads, each keeping DEPTH O_DIRECT 4 KiB requests in flight (Linux AIO) at
 *       random blocks of the first SPAN_MIB; slot s of thread t owns the blocks b with
 *       b % (THREADS*DEPTH) == t*DEPTH+s, so no two requests in flight touch one block. Three in
 *       four requests are writes (the next version), one a read checked against the last version.
 *       Then fdatasync, one O_DIRECT pass over the span checking every block, and
 *       stress-digest: FNV-1a 32 over (block, version) of every written block, in block order.
 *   guestio crash DEV TAG SPAN_MIB SEED
 *       Forever: write 4 blocks (each once, spread over the span) with O_DIRECT, fdatasync, then
 *       print "FLUSHED TAG BLOCK CRC32" for each. Every line printed was flushed.
 *   guestio readrate DEV MIB
 *       O_DIRECT 256 KiB reads from offset 0; prints rate-bytes and rate-us (elapsed).
 *   guestio highmem MIB
 *       Touches MIB of anonymous memory with a pattern, reads the physical frames from
 *       /proc/self/pagemap and checks the pattern: highmem-pages, highmem-above4g, highmem-errors.
 *   guestio zero DEV OFFSET LENGTH unmap|keep
 *       fallocate on the disk: unmap = PUNCH_HOLE (Linux sends WRITE_ZEROES with the unmap flag
 *       and never falls back to writing zeros), keep = ZERO_RANGE (WRITE_ZEROES without unmap).
 *   guestio send ADDR PORT FILE / guestio recv PORT FILE
 *       TCP: send connects (retrying for 120 s) and sends FILE; recv accepts one connection
 *       and writes what it reads to FILE until EOF.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/falloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BS 4096
static void die(const char *what) { fprintf(stderr, "guestio: %s: %s\n", what, strerror(errno)); exit(2); }
/* O_DIRECT, or buffered where the file system refuses it (a plain file on tmpfs, for the host's own tests). */
static int open_direct(const char *path, int flags) {
  int fd = open(path, flags | O_DIRECT);
  if (fd < 0 && errno == EINVAL) fd = open(path, flags);
  if (fd < 0) die(path);
  return fd;
}
static uint64_t now_us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (uint64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000; }

static uint32_t mix(uint64_t seed, uint64_t block, uint64_t version) {
  uint64_t x = seed ^ (block * 0x9e3779b97f4a7c15ull) ^ (version * 0xc2b2ae3d27d4eb4full);
  x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33;
  uint32_t r = (uint32_t)x;
  return r ? r : 1;
}

static void fill(uint8_t *b, uint64_t seed, uint64_t block, uint64_t version) {
  memcpy(b, "TSVMMBLK", 8);
  memcpy(b + 8, &block, 8); memcpy(b + 16, &version, 8); memcpy(b + 24, &seed, 8);
  uint32_t x = mix(seed, block, version);
  for (int i = 32; i < BS; i += 4) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; memcpy(b + i, &x, 4); }
}

static uint32_t crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) { c ^= p[i]; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & -(c & 1)); }
  return ~c;
}

static uint32_t fnv(uint32_t h, uint64_t v) {
  for (int i = 0; i < 8; i++) { h ^= (uint8_t)(v >> (8 * i)); h *= 16777619u; }
  return h;
}

/* ---- stress ---- */
static int dev_fd;
static uint64_t span_blocks, seed_g;
static uint32_t *versions; /* last version written per block (0: never) */
static int threads_g, depth_g;
static long ops_per_thread;
static long total_writes, total_reads, verify_errors;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

static long sys_io_setup(unsigned n, aio_context_t *ctx) { return syscall(SYS_io_setup, n, ctx); }
static long sys_io_submit(aio_context_t ctx, long n, struct iocb **p) { return syscall(SYS_io_submit, ctx, n, p); }
static long sys_io_getevents(aio_context_t ctx, long mn, long n, struct io_event *ev) { return syscall(SYS_io_getevents, ctx, mn, n, ev, NULL); }

struct slot { struct iocb cb; uint8_t *buf; uint64_t block; uint64_t version; int is_write; uint64_t rng; };

static uint64_t pick(struct slot *s, int t, int i) {
  uint64_t stride = (uint64_t)threads_g * depth_g, owned = (span_blocks - (t * depth_g + i) + stride - 1) / stride;
  s->rng ^= s->rng << 13; s->rng ^= s->rng >> 7; s->rng ^= s->rng << 17;
  return (s->rng % owned) * stride + t * depth_g + i;
}

static void start(aio_context_t ctx, struct slot *s, int t, int i) {
  s->block = pick(s, t, i);
  s->is_write = (s->rng >> 40) % 4 != 0 || versions[s->block] == 0;
  memset(&s->cb, 0, sizeof s->cb);
  s->cb.aio_fildes = dev_fd;
  s->cb.aio_buf = (uint64_t)(uintptr_t)s->buf;
  s->cb.aio_nbytes = BS;
  s->cb.aio_offset = (int64_t)(s->block * BS);
  s->cb.aio_data = (uint64_t)(uintptr_t)s;
  if (s->is_write) { s->version = versions[s->block] + 1; fill(s->buf, seed_g, s->block, s->version); s->cb.aio_lio_opcode = IOCB_CMD_PWRITE; }
  else { s->version = versions[s->block]; s->cb.aio_lio_opcode = IOCB_CMD_PREAD; }
  struct iocb *p = &s->cb;
  if (sys_io_submit(ctx, 1, &p) != 1) die("io_submit");
}

static void *stress_thread(void *arg) {
  int t = (int)(intptr_t)arg;
  aio_context_t ctx = 0;
  if (sys_io_setup(depth_g, &ctx) < 0) die("io_setup");
  struct slot *slots = calloc(depth_g, sizeof *slots);
  uint8_t *expect;
  if (posix_memalign((void **)&expect, BS, BS)) die("posix_memalign");
  long started = 0, done = 0, writes = 0, reads = 0, errors = 0;
  for (int i = 0; i < depth_g; i++) {
    if (posix_memalign((void **)&slots[i].buf, BS, BS)) die("posix_memalign");
    slots[i].rng = seed_g ^ ((uint64_t)(t * depth_g + i + 1) * 0x9e3779b97f4a7c15ull);
    if (started < ops_per_thread) { start(ctx, &slots[i], t, i); started++; }
  }
  struct io_event ev[64];
  while (done < started) {
    long n = sys_io_getevents(ctx, 1, depth_g < 64 ? depth_g : 64, ev);
    if (n < 0) { if (errno == EINTR) continue; die("io_getevents"); }
    for (long k = 0; k < n; k++) {
      struct slot *s = (struct slot *)(uintptr_t)ev[k].data;
      int i = (int)(s - slots);
      done++;
      if (ev[k].res != BS) { fprintf(stderr, "guestio: %s of block %llu: result %lld\n", s->is_write ? "write" : "read", (unsigned long long)s->block, (long long)ev[k].res); errors++; }
      else if (s->is_write) { versions[s->block] = (uint32_t)s->version; writes++; }
      else {
        fill(expect, seed_g, s->block, s->version);
        if (memcmp(expect, s->buf, BS) != 0) { fprintf(stderr, "guestio: block %llu does not read back version %llu\n", (unsigned long long)s->block, (unsigned long long)s->version); errors++; }
        reads++;
      }
      if (started < ops_per_thread) { start(ctx, s, t, i); started++; }
    }
  }
  pthread_mutex_lock(&stats_lock);
  total_writes += writes; total_reads += reads; verify_errors += errors;
  pthread_mutex_unlock(&stats_lock);
  return NULL;
}

static int stress(const char *dev, long span_mib, int threads, int depth, long ops, uint64_t seed) {
  dev_fd = open_direct(dev, O_RDWR);
  span_blocks = ((uint64_t)span_mib << 20) / BS; seed_g = seed; threads_g = threads; depth_g = depth;
  ops_per_thread = ops / threads;
  versions = calloc(span_blocks, sizeof *versions);
  pthread_t *th = calloc(threads, sizeof *th);
  uint64_t t0 = now_us();
  for (int t = 0; t < threads; t++) if (pthread_create(&th[t], NULL, stress_thread, (void *)(intptr_t)t)) die("pthread_create");
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
  if (fdatasync(dev_fd) < 0) die("fdatasync");
  uint64_t t1 = now_us();
  uint8_t *buf, *expect;
  if (posix_memalign((void **)&buf, BS, 64 * BS) || posix_memalign((void **)&expect, BS, BS)) die("posix_memalign");
  uint32_t digest = 2166136261u;
  long written = 0, bad = 0;
  for (uint64_t b = 0; b < span_blocks; b += 64) {
    if (pread(dev_fd, buf, 64 * BS, (off_t)(b * BS)) != 64 * BS) die("pread (verify pass)");
    for (uint64_t k = 0; k < 64 && b + k < span_blocks; k++) {
      uint64_t blk = b + k;
      if (versions[blk] == 0) { memset(expect, 0, BS); }
      else { fill(expect, seed, blk, versions[blk]); digest = fnv(fnv(digest, blk), versions[blk]); written++; }
      if (memcmp(expect, buf + k * BS, BS) != 0) { if (bad < 5) fprintf(stderr, "guestio: verify pass: block %llu is not version %u\n", (unsigned long long)blk, versions[blk]); bad++; }
    }
  }
  printf("stress-writes=%ld\nstress-reads=%ld\nstress-errors=%ld\nstress-verify-bad=%ld\nstress-blocks=%ld\nstress-digest=%08x\nstress-us=%llu\n",
         total_writes, total_reads, verify_errors, bad, written, digest, (unsigned long long)(t1 - t0));
  close(dev_fd);
  return verify_errors || bad ? 1 : 0;
}

/* ---- crash ---- */
static int crash(const char *dev, const char *tag, long span_mib, uint64_t seed) {
  int fd = open_direct(dev, O_RDWR);
  uint64_t blocks = ((uint64_t)span_mib << 20) / BS, step = 7919 % blocks ? 7919 : 7;
  uint8_t *buf;
  if (posix_memalign((void **)&buf, BS, 4 * BS)) die("posix_memalign");
  setvbuf(stdout, NULL, _IOLBF, 0);
  uint64_t blk[4];
  for (uint64_t i = 0; i + 4 <= blocks; i += 4) {
    for (int k = 0; k < 4; k++) {
      blk[k] = ((i + k) * step) % blocks; /* step is prime to blocks: each block once */
      fill(buf + k * BS, seed, blk[k], 1);
      if (pwrite(fd, buf + k * BS, BS, (off_t)(blk[k] * BS)) != BS) die("pwrite");
    }
    if (fdatasync(fd) < 0) die("fdatasync");
    for (int k = 0; k < 4; k++) printf("FLUSHED %s %llu %08x\n", tag, (unsigned long long)blk[k], crc32(buf + k * BS, BS));
  }
  printf("crash-%s-wrapped=1\n", tag);
  return 0;
}

/* ---- readrate ---- */
static int readrate(const char *dev, long mib) {
  int fd = open(dev, O_RDONLY | O_DIRECT);
  if (fd < 0) die(dev);
  uint8_t *buf;
  const int chunk = 256 << 10;
  if (posix_memalign((void **)&buf, BS, chunk)) die("posix_memalign");
  uint64_t t0 = now_us(), bytes = 0;
  for (off_t off = 0; off < (off_t)mib << 20; off += chunk) {
    if (pread(fd, buf, chunk, off) != chunk) die("pread");
    bytes += chunk;
  }
  printf("rate-bytes=%llu\nrate-us=%llu\n", (unsigned long long)bytes, (unsigned long long)(now_us() - t0));
  return 0;
}

/* ---- highmem ---- */
static int highmem(long mib) {
  size_t len = (size_t)mib << 20, pages = len / 4096;
  uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  for (size_t i = 0; i < len / 8; i++) p[i] = (uint64_t)i * 0x9e3779b97f4a7c15ull ^ 0x5453564d4dull;
  int pm = open("/proc/self/pagemap", O_RDONLY);
  if (pm < 0) die("/proc/self/pagemap");
  long above = 0, present = 0, errors = 0;
  uint64_t maxpfn = 0;
  for (size_t i = 0; i < pages; i++) {
    uint64_t e;
    if (pread(pm, &e, 8, (off_t)(((uintptr_t)p / 4096 + i) * 8)) != 8) die("pread pagemap");
    if (!(e >> 63)) continue;
    present++;
    uint64_t pfn = e & ((1ull << 55) - 1);
    if (pfn > maxpfn) maxpfn = pfn;
    if (pfn >= (1ull << 20)) above++; /* frame at or above 4 GiB */
  }
  for (size_t i = 0; i < len / 8; i++) if (p[i] != ((uint64_t)i * 0x9e3779b97f4a7c15ull ^ 0x5453564d4dull)) errors++;
  printf("highmem-pages=%zu\nhighmem-present=%ld\nhighmem-above4g=%ld\nhighmem-maxaddr=%llx\nhighmem-errors=%ld\n",
         pages, present, above, (unsigned long long)(maxpfn * 4096), errors);
  return errors ? 1 : 0;
}

/* ---- zero ---- */
static int zero(const char *dev, long long off, long long len, const char *how) {
  int fd = open(dev, O_RDWR);
  if (fd < 0) die(dev);
  int mode = !strcmp(how, "unmap") ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
  if (fallocate(fd, mode, off, len) < 0) { printf("zero-%s=failed:%s\n", how, strerror(errno)); return 1; }
  if (fsync(fd) < 0) die("fsync");
  printf("zero-%s=ok\n", how);
  return 0;
}

/* ---- send / recv ---- */
static int send_file(const char *addr, int port, const char *file) {
  int in = open(file, O_RDONLY);
  if (in < 0) die(file);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) { fprintf(stderr, "guestio: bad address %s\n", addr); return 2; }
  int s = -1;
  uint64_t t0 = now_us();
  for (;;) {
    s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0) break;
    close(s);
    if (now_us() - t0 > 120000000ull) die("connect");
    usleep(200000);
  }
  static char buf[1 << 16];
  long total = 0;
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0) die("read");
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) { ssize_t w = write(s, buf + off, n - off); if (w <= 0) die("send"); off += w; total += w; }
  }
  shutdown(s, SHUT_WR);
  struct timeval tv = { .tv_sec = 60 };
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (read(s, buf, sizeof buf) > 0) {} /* until the peer closes: it has everything */
  close(s);
  printf("sent-bytes=%ld\n", total);
  return 0;
}

static int recv_file(int port, const char *file) {
  int out = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0) die(file);
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
  if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0) die("bind/listen");
  printf("listening=%d\n", port);
  fflush(stdout);
  int s = accept(l, NULL, NULL);
  if (s < 0) die("accept");
  static char buf[1 << 16];
  long total = 0;
  for (;;) {
    ssize_t n = read(s, buf, sizeof buf);
    if (n < 0) die("recv");
    if (n == 0) break;
    if (write(out, buf, n) != n) die("write");
    total += n;
  }
  close(s);
  close(out);
  printf("received-bytes=%ld\n", total);
  return 0;
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  if (!strcmp(cmd, "stress") && argc == 8) return stress(argv[2], atol(argv[3]), atoi(argv[4]), atoi(argv[5]), atol(argv[6]), strtoull(argv[7], NULL, 0));
  if (!strcmp(cmd, "crash") && argc == 6) return crash(argv[2], argv[3], atol(argv[4]), strtoull(argv[5], NULL, 0));
  if (!strcmp(cmd, "readrate") && argc == 4) return readrate(argv[2], atol(argv[3]));
  if (!strcmp(cmd, "highmem") && argc == 3) return highmem(atol(argv[2]));
  if (!strcmp(cmd, "zero") && argc == 6) return zero(argv[2], atoll(argv[3]), atoll(argv[4]), argv[5]);
  if (!strcmp(cmd, "send") && argc == 5) return send_file(argv[2], atoi(argv[3]), argv[4]);
  if (!strcmp(cmd, "recv") && argc == 4) return recv_file(atoi(argv[2]), argv[3]);
  fprintf(stderr, "usage: guestio stress DEV SPAN_MIB THREADS DEPTH OPS SEED | crash DEV TAG SPAN_MIB SEED | readrate DEV MIB | highmem MIB | zero DEV OFF LEN unmap|keep | send ADDR PORT FILE | recv PORT FILE\n");
  return 2;
}
