/*
 * hostile: the guest kit's hostile-guest program (static: the guest has busybox and no libc). It drives
 * devices the way a malicious guest kernel could; the VMM must stay up, refuse what is wrong, and keep
 * the other devices working. Each command prints KEY=VALUE lines for the test to read.
 *
 *   hostile blk BASE
 *       BASE: the physical address (hex) of a virtio-mmio window holding a virtio-blk device that no
 *       kernel driver uses (unbind it first). The window is mapped through /dev/mem (boot with
 *       iomem=relaxed: the virtio_mmio driver still claims it). Every attack resets the device, sets
 *       it up again (one queue of 16, rings and buffers in locked pages whose physical addresses come
 *       from /proc/self/pagemap) and posts one malicious request; it prints
 *       blk-<attack>=<outcome> where outcome is needs-reset (DEVICE_NEEDS_RESET, 0x40, in Status),
 *       used:<status byte> (the request completed; 0 OK, 1 IOERR, 2 UNSUPP), silent (nothing within
 *       2 s) or refused (the device did not accept the set-up). A valid read before and after the
 *       attacks proves the driving works: blk-good-* = used:0 and blk-data-*=<first 8 bytes, hex>.
 *       Then a notification storm (blk-storm), 100 set-ups each reset with a read in flight (blk-reset-storm),
 *       and one valid read whose indirect table holds 65535 descriptors (blk-ind-long, with its time in us).
 *   hostile serial BYTES
 *       Port I/O (ioperm): BYTES bytes straight into the 16550's THR without waiting for THRE, then
 *       a storm of writes to every register (DLAB, divisor, FCR, IER, MCR without loopback) and
 *       reads, then restores LCR/IER/MCR/divisor so the kernel's console goes on.
 *   hostile i8042 COUNT
 *       COUNT controller commands and data bytes to ports 0x64/0x60 (never the reset pulses
 *       0xF0-0xFF nor 0xD1 "write output port") and reads of both ports.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define QSIZE 16u

/* virtio-mmio registers (virtio 1.2, 4.2.2) */
enum {
  R_MAGIC = 0x00, R_VERSION = 0x04, R_DEVICE_ID = 0x08, R_DEV_FEAT = 0x10, R_DEV_FEAT_SEL = 0x14,
  R_DRV_FEAT = 0x20, R_DRV_FEAT_SEL = 0x24, R_QUEUE_SEL = 0x30, R_QUEUE_NUM_MAX = 0x34, R_QUEUE_NUM = 0x38,
  R_QUEUE_READY = 0x44, R_QUEUE_NOTIFY = 0x50, R_INT_STATUS = 0x60, R_INT_ACK = 0x64, R_STATUS = 0x70,
  R_DESC_LO = 0x80, R_DESC_HI = 0x84, R_AVAIL_LO = 0x90, R_AVAIL_HI = 0x94, R_USED_LO = 0xa0, R_USED_HI = 0xa4,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 0x40, S_FAILED = 0x80 };
enum { F_NEXT = 1, F_WRITE = 2, F_INDIRECT = 4 };

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QSIZE]; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[QSIZE]; };
struct req_hdr { uint32_t type, reserved; uint64_t sector; };

/* One locked page and its guest-physical address. */
struct page { uint8_t *v; uint64_t pa; };

static volatile uint32_t *regs;
static uint64_t base_pa;
static struct page ring_pg, hdr_pg, data_pg, ind_pg, big_pg;
static struct desc *dt;
static struct avail *av;
static struct used *us;
static uint16_t avail_idx, used_seen;
static uint8_t *status_at; /* where the last request's status byte is */
static int posted;
static int all_features; /* setup_with() acks every feature bit, offered or not */
static int skip_features_ok; /* setup_with() goes to DRIVER_OK without FEATURES_OK */ /* set by an attack that made its own avail entry and kick */

static void die(const char *what) { printf("hostile-error=%s: %s\n", what, strerror(errno)); exit(2); }
static uint32_t rd(unsigned off) { return regs[off / 4]; }
static void wr(unsigned off, uint32_t v) { regs[off / 4] = v; __sync_synchronize(); }
static uint64_t now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* A zeroed, locked page and its physical address (bits 0-54 of its /proc/self/pagemap entry). */
static struct page phys_page(void) {
  struct page p;
  p.v = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
  if (p.v == MAP_FAILED) die("mmap");
  memset(p.v, 0, PAGE);
  int fd = open("/proc/self/pagemap", O_RDONLY);
  if (fd < 0) die("open pagemap");
  uint64_t e;
  if (pread(fd, &e, 8, (off_t)((uintptr_t)p.v / PAGE) * 8) != 8) die("read pagemap");
  close(fd);
  if (!(e >> 63) || !(e & ((1ull << 55) - 1))) {
    errno = EPERM;
    die("pagemap gives no frame (not root?)");
  }
  p.pa = (e & ((1ull << 55) - 1)) * PAGE;
  return p;
}

static void set_addr(unsigned lo, uint64_t pa) {
  wr(lo, (uint32_t)pa);
  wr(lo + 4, (uint32_t)(pa >> 32));
}

/* Reset, negotiate VERSION_1 + INDIRECT_DESC, lay out queue 0 (size qsize, rings at desc/avail/used),
 * and set DRIVER_OK. Returns the status read back. */
static uint32_t setup_with(uint32_t qsize, uint64_t desc, uint64_t avail, uint64_t used) {
  wr(R_STATUS, 0);
  for (int i = 0; i < 1000 && rd(R_STATUS) != 0; i++) usleep(1000);
  memset(ring_pg.v, 0, PAGE);
  avail_idx = used_seen = 0;
  wr(R_STATUS, S_ACK);
  wr(R_STATUS, S_ACK | S_DRIVER);
  wr(R_DEV_FEAT_SEL, 0);
  uint32_t lo = rd(R_DEV_FEAT);
  wr(R_DRV_FEAT_SEL, 0);
  wr(R_DRV_FEAT, all_features ? 0xffffffffu : lo & (1u << 28)); /* VIRTIO_F_RING_INDIRECT_DESC when offered */
  wr(R_DRV_FEAT_SEL, 1);
  wr(R_DRV_FEAT, all_features ? 0xffffffffu : 1); /* VIRTIO_F_VERSION_1 */
  uint32_t fok = skip_features_ok ? 0 : S_FEATURES_OK;
  wr(R_STATUS, S_ACK | S_DRIVER | fok);
  wr(R_QUEUE_SEL, 0);
  wr(R_QUEUE_NUM, qsize);
  set_addr(R_DESC_LO, desc);
  set_addr(R_AVAIL_LO, avail);
  set_addr(R_USED_LO, used);
  wr(R_QUEUE_READY, 1);
  wr(R_STATUS, S_ACK | S_DRIVER | fok | S_DRIVER_OK);
  return rd(R_STATUS);
}

/* The normal layout: descriptors at 0, avail ring at 0x400, used ring at 0x800 of the ring page. */
static uint32_t setup(void) {
  dt = (struct desc *)ring_pg.v;
  av = (struct avail *)(ring_pg.v + 0x400);
  us = (struct used *)(ring_pg.v + 0x800);
  return setup_with(QSIZE, ring_pg.pa, ring_pg.pa + 0x400, ring_pg.pa + 0x800);
}

static void post(uint16_t head) {
  av->ring[avail_idx % QSIZE] = head;
  __sync_synchronize();
  av->idx = ++avail_idx;
  __sync_synchronize();
  wr(R_QUEUE_NOTIFY, 0);
}

/* What the device did with the last request: needs-reset, used:<status byte>, or silent after 2 s. */
static const char *outcome(void) {
  static char buf[64];
  for (int i = 0; i < 2000; i++) {
    __sync_synchronize();
    if (rd(R_STATUS) & S_NEEDS_RESET) return "needs-reset";
    if (*(volatile uint16_t *)&us->idx != used_seen) {
      used_seen = us->idx;
      snprintf(buf, sizeof buf, "used:%u", *(volatile uint8_t *)status_at);
      return buf;
    }
    usleep(1000);
  }
  return "silent";
}

static void report(const char *name, const char *what) {
  printf("blk-%s=%s\n", name, what);
  fflush(stdout);
}

/* Descriptor i: addr, len, flags, next. */
static void d(struct desc *t, int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  t[i].addr = addr;
  t[i].len = len;
  t[i].flags = flags;
  t[i].next = next;
}

/* A read of one sector (header, 512-byte data buffer, status byte) in descriptors 0-2 of table t. */
static void read_chain(struct desc *t, uint64_t sector) {
  struct req_hdr *h = (struct req_hdr *)hdr_pg.v;
  h->type = 0; /* VIRTIO_BLK_T_IN */
  h->reserved = 0;
  h->sector = sector;
  hdr_pg.v[0x100] = 0xff;
  status_at = hdr_pg.v + 0x100;
  d(t, 0, hdr_pg.pa, 16, F_NEXT, 1);
  d(t, 1, data_pg.pa, 512, F_WRITE | F_NEXT, 2);
  d(t, 2, hdr_pg.pa + 0x100, 1, F_WRITE, 0);
}

static void good(const char *name) {
  if (setup() & S_NEEDS_RESET) {
    report(name, "refused");
    return;
  }
  memset(data_pg.v, 0, 512);
  read_chain(dt, 0);
  post(0);
  report(name, outcome());
  printf("blk-data-%s=", name);
  for (int i = 0; i < 8; i++) printf("%02x", data_pg.v[i]);
  printf("\n");
}

/* One attack: set up, let edit() break the request (or the queue), post head 0, report. */
static void attack(const char *name, void (*edit)(void)) {
  if (setup() & S_NEEDS_RESET) {
    report(name, "refused");
    return;
  }
  read_chain(dt, 0);
  posted = 0;
  edit();
  if (!posted) post(0);
  report(name, outcome());
}

static void e_loop(void) { d(dt, 2, hdr_pg.pa + 0x100, 1, F_WRITE | F_NEXT, 1); }
static void e_past_ram(void) { dt[1].addr = 0x4000000000ull; /* 256 GiB */ }
static void e_own_mmio(void) { dt[1].addr = base_pa; /* the device's own registers */ }
static void e_lapic(void) { dt[1].addr = 0xfee00000ull; }
static void e_len_4g(void) { dt[1].len = 0xfffff000u; }
static void e_len_wrap(void) { dt[1].addr = 0xffffffffffffff00ull; dt[1].len = 0x200; }
static void e_head_range(void) {
  av->ring[0] = 999;
  __sync_synchronize();
  av->idx = ++avail_idx;
  posted = 1;
  wr(R_QUEUE_NOTIFY, 0);
}
static void e_next_range(void) { dt[1].next = 4000; }
static void e_avail_jump(void) {
  av->ring[0] = 0;
  __sync_synchronize();
  avail_idx += 1000;
  av->idx = avail_idx;
  posted = 1;
  __sync_synchronize();
  wr(R_QUEUE_NOTIFY, 0);
}
static struct desc *it(void) { return (struct desc *)ind_pg.v; }
static void e_ind_nested(void) {
  read_chain(it(), 0);
  d(it(), 2, ind_pg.pa, 48, F_INDIRECT, 0); /* an indirect descriptor inside the table */
  d(dt, 0, ind_pg.pa, 48, F_INDIRECT, 0);
}
static void e_ind_odd(void) {
  read_chain(it(), 0);
  d(dt, 0, ind_pg.pa, 47, F_INDIRECT, 0);
}
static void e_ind_huge(void) {
  read_chain(it(), 0);
  d(dt, 0, ind_pg.pa, 0x200000, F_INDIRECT, 0); /* 131072 entries */
}
static void e_ind_loop(void) {
  read_chain(it(), 0);
  d(it(), 2, hdr_pg.pa + 0x100, 1, F_WRITE | F_NEXT, 0);
  d(dt, 0, ind_pg.pa, 48, F_INDIRECT, 0);
}
static void e_ind_next(void) {
  read_chain(it(), 0);
  d(dt, 0, ind_pg.pa, 48, F_INDIRECT | F_NEXT, 1);
}
static void e_ind_past_ram(void) { d(dt, 0, 0x4000000000ull, 48, F_INDIRECT, 0); }
static void e_sector_end(void) { ((struct req_hdr *)hdr_pg.v)->sector = 1ull << 60; }
static void e_bad_type(void) { ((struct req_hdr *)hdr_pg.v)->type = 0x7777; }
static void e_short_hdr(void) { dt[0].len = 7; }
static void e_write_then_read(void) { d(dt, 1, data_pg.pa, 512, F_NEXT, 2); d(dt, 0, hdr_pg.pa, 16, F_WRITE | F_NEXT, 1); }
static void e_no_status(void) {
  dt[1].flags = F_WRITE; /* the data buffer's last byte is the status */
  status_at = data_pg.v + 511;
}

/* Set-up attacks: a bad queue size or rings outside RAM at DRIVER_OK. */
static void setup_attack(const char *name, uint32_t qsize, uint64_t desc) {
  uint32_t st = setup_with(qsize, desc, ring_pg.pa + 0x400, ring_pg.pa + 0x800);
  report(name, (st & S_NEEDS_RESET) ? "needs-reset" : (st & S_DRIVER_OK) ? "accepted" : "refused");
}

/* After DRIVER_OK: the driver changes the queue's size and addresses and drops QueueReady; the device
 * must ignore it and go on serving the queue as it was set up. */
static void relayout(void) {
  if (setup() & S_NEEDS_RESET) {
    report("relayout", "refused");
    return;
  }
  wr(R_QUEUE_READY, 0);
  wr(R_QUEUE_NUM, 2);
  set_addr(R_DESC_LO, 0x4000000000ull);
  set_addr(R_USED_LO, base_pa);
  read_chain(dt, 0);
  post(0);
  report("relayout", outcome());
}

/* Notification storms: n kicks of queue 0 (ioeventfd) with nothing new, then n/10 kicks of a queue
 * that does not exist (each an exit to the VMM); then one valid read. */
static void storm(long n) {
  if (setup() & S_NEEDS_RESET) {
    report("storm", "refused");
    return;
  }
  uint64_t t0 = now_us();
  for (long i = 0; i < n; i++) regs[R_QUEUE_NOTIFY / 4] = 0;
  uint64_t t1 = now_us();
  for (long i = 0; i < n / 10; i++) regs[R_QUEUE_NOTIFY / 4] = 7;
  uint64_t t2 = now_us();
  printf("blk-storm-kicks=%ld blk-storm-us=%llu\n", n, (unsigned long long)(t1 - t0));
  printf("blk-storm-bad-kicks=%ld blk-storm-bad-us=%llu\n", n / 10, (unsigned long long)(t2 - t1));
  read_chain(dt, 0);
  post(0);
  report("storm", outcome());
}

/* n set-ups, each with a read posted and reset at once (leaks would show in the VMM's resident size), then a read. */
static void reset_storm(int n) {
  for (int i = 0; i < n; i++) {
    setup();
    read_chain(dt, 0);
    post(0);
    wr(R_STATUS, 0);
  }
  setup();
  read_chain(dt, 0);
  post(0);
  printf("blk-reset-storm-cycles=%d\n", n);
  report("reset-storm", outcome());
}

/* A request whose chain holds 65535 descriptors (an indirect table of 1 MiB in RAM: valid but oversized). */
static void ind_long(void) {
  if (setup() & S_NEEDS_RESET) {
    report("ind-long", "refused");
    return;
  }
  struct desc *t = (struct desc *)big_pg.v;
  size_t n = 65535;
  read_chain(t, 0);
  for (size_t i = 1; i < n - 1; i++) d(t, (int)i, data_pg.pa, 0, F_WRITE | F_NEXT, (uint16_t)(i + 1));
  d(t, 1, data_pg.pa, 512, F_WRITE | F_NEXT, 2);
  d(t, (int)(n - 1), hdr_pg.pa + 0x100, 1, F_WRITE, 0);
  d(dt, 0, big_pg.pa, (uint32_t)(n * 16), F_INDIRECT, 0);
  uint64_t t0 = now_us();
  post(0);
  const char *o = outcome();
  report("ind-long", o);
  printf("blk-ind-long-us=%llu\n", (unsigned long long)(now_us() - t0));
}

/* 1 MiB of physically contiguous memory is not at hand from user space: a locked 2 MiB huge page
 * when the kernel has one, otherwise big_pg.v stays NULL and ind-long is skipped. */
static void big_table(void) {
  big_pg.v = mmap(0, 2u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
  if (big_pg.v == MAP_FAILED) {
    big_pg.v = NULL;
    return;
  }
  memset(big_pg.v, 0, 2u << 20);
  int fd = open("/proc/self/pagemap", O_RDONLY);
  uint64_t e = 0;
  if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)big_pg.v / PAGE) * 8) != 8) die("read pagemap");
  close(fd);
  big_pg.pa = (e & ((1ull << 55) - 1)) * PAGE;
}

static int cmd_blk(const char *base) {
  base_pa = strtoull(base, 0, 16);
  int fd = open("/dev/mem", O_RDWR | O_SYNC);
  if (fd < 0) die("open /dev/mem");
  void *m = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)base_pa);
  if (m == MAP_FAILED) die("mmap /dev/mem");
  regs = m;
  printf("blk-magic=%08x blk-version=%u blk-device-id=%u blk-queue-max=%u\n", rd(R_MAGIC), rd(R_VERSION),
         rd(R_DEVICE_ID), rd(R_QUEUE_NUM_MAX));
  if (rd(R_MAGIC) != 0x74726976 || rd(R_DEVICE_ID) != 2) {
    printf("hostile-error=no virtio-blk at %s\n", base);
    return 2;
  }
  ring_pg = phys_page();
  hdr_pg = phys_page();
  data_pg = phys_page();
  ind_pg = phys_page();
  big_table();
  good("good-before");
  attack("loop", e_loop);
  attack("past-ram", e_past_ram);
  attack("own-mmio", e_own_mmio);
  attack("lapic", e_lapic);
  attack("len-4g", e_len_4g);
  attack("len-wrap", e_len_wrap);
  attack("head-range", e_head_range);
  attack("next-range", e_next_range);
  attack("avail-jump", e_avail_jump);
  attack("ind-nested", e_ind_nested);
  attack("ind-odd", e_ind_odd);
  attack("ind-huge", e_ind_huge);
  attack("ind-loop", e_ind_loop);
  attack("ind-next", e_ind_next);
  attack("ind-past-ram", e_ind_past_ram);
  attack("sector-end", e_sector_end);
  attack("bad-type", e_bad_type);
  attack("short-hdr", e_short_hdr);
  attack("write-then-read", e_write_then_read);
  attack("no-status", e_no_status);
  setup_attack("size-3", 3, ring_pg.pa);
  setup_attack("size-huge", 1u << 16, ring_pg.pa);
  setup_attack("ring-past-ram", QSIZE, 0x4000000000ull);
  setup_attack("ring-mmio", QSIZE, base_pa);
  all_features = 1;
  setup_attack("feat-all", QSIZE, ring_pg.pa);
  all_features = 0;
  skip_features_ok = 1;
  setup_attack("ok-no-feat", QSIZE, ring_pg.pa);
  skip_features_ok = 0;
  relayout();
  storm(5000);
  reset_storm(100);
  if (big_pg.v) ind_long();
  else printf("blk-ind-long=skipped (no huge page)\n");
  good("good-after");
  wr(R_STATUS, 0);
  return 0;
}

/* 16550 at COM1. */
static int cmd_serial(long bytes) {
  const unsigned P = 0x3f8;
  if (ioperm(P, 8, 1)) die("ioperm 0x3f8");
  tcdrain(STDOUT_FILENO); /* the kernel's driver idle: the IER read below is its resting value */
  uint8_t lcr = inb(P + 3), ier = inb(P + 1), mcr = inb(P + 4);
  outb(lcr | 0x80, P + 3);
  uint8_t dll = inb(P), dlm = inb(P + 1);
  outb(lcr & 0x7f, P + 3);
  uint64_t t0 = now_us();
  static const char pat[] = "hostile serial flood 0123456789abcdefghijklmnopqrstuvwxyz ";
  for (long i = 0; i < bytes; i++) outb((uint8_t)pat[i % (sizeof pat - 1)], P);
  uint64_t t1 = now_us();
  unsigned seed = 12345, reads = 0;
  for (long i = 0; i < bytes / 10; i++) {
    seed = seed * 1103515245u + 12345u;
    unsigned reg = (seed >> 16) % 8, v = (seed >> 8) & 0xff;
    if (reg == 0) continue; /* no more THR bytes (and no divisor latch games through it) */
    if (reg == 4) v &= ~0x10u; /* no loopback: its bytes would reach the tty as input */
    if (reg == 3) v &= 0x7f; /* DLAB off: port 0 stays THR/RBR */
    outb((uint8_t)v, P + reg);
    reads += inb(P + (seed >> 24) % 8);
  }
  outb(0x80, P + 3);
  outb(0x12, P);
  outb(0x34, P + 1);
  outb(dll, P);
  outb(dlm, P + 1);
  outb(lcr, P + 3);
  outb(0x87, P + 2); /* FIFO on and cleared, RX trigger 8 (what Linux's 8250 sets on a 16550A) */
  outb(mcr, P + 4);
  outb(ier, P + 1);
  printf("\nserial-flood-bytes=%ld serial-flood-us=%llu serial-storm=%ld serial-read-sum=%u\n", bytes,
         (unsigned long long)(t1 - t0), bytes / 10, reads);
  return 0;
}

/* i8042: commands that neither pulse the reset line (0xF0-0xFF) nor write the output port (0xD1). */
static int cmd_i8042(long count) {
  if (ioperm(0x60, 1, 1) || ioperm(0x64, 1, 1)) die("ioperm 0x60/0x64");
  static const uint8_t cmds[] = {0x20, 0x60, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xad, 0xae, 0xc0,
                                 0xd0, 0xd2, 0xd3, 0xd4, 0xe0, 0x21, 0x3f, 0x7f, 0xa1, 0xc1};
  static const uint8_t data[] = {0xff, 0xf4, 0xf5, 0xed, 0xee, 0xf2, 0xf3, 0x00, 0x07, 0x1e, 0x9e};
  unsigned seed = 777, reads = 0;
  uint64_t t0 = now_us();
  for (long i = 0; i < count; i++) {
    seed = seed * 1103515245u + 12345u;
    if ((seed >> 16) & 1) outb(cmds[(seed >> 8) % sizeof cmds], 0x64);
    else outb(data[(seed >> 8) % sizeof data], 0x60);
    reads += inb(0x64) + inb(0x60);
  }
  for (int i = 0; i < 64; i++) reads += inb(0x60); /* drain what the controller queued */
  printf("i8042-count=%ld i8042-us=%llu i8042-read-sum=%u i8042-status=%02x\n", count,
         (unsigned long long)(now_us() - t0), reads, inb(0x64));
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, 0, _IOLBF, 0);
  if (argc == 3 && !strcmp(argv[1], "blk")) return cmd_blk(argv[2]);
  if (argc == 3 && !strcmp(argv[1], "serial")) return cmd_serial(atol(argv[2]));
  if (argc == 3 && !strcmp(argv[1], "i8042")) return cmd_i8042(atol(argv[2]));
  fprintf(stderr, "usage: hostile blk BASE | serial BYTES | i8042 COUNT\n");
  return 2;
}
