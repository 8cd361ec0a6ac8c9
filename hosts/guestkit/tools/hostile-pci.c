/*
 * hostile-pci: the guest kit's hostile-guest program for the PCI side of the cloud host (static, like hostile.c).
 * It attacks one virtio-pci function ("victim", unbound from its driver first) through ECAM (/dev/mem at the
 * MCFG's base) and ports 0xCF8/0xCFC (iopl), its BAR (virtio common configuration, notify, ISR, device
 * configuration, the MSI-X table and PBA) and the ACPI hotplug controller's registers. Boot with iomem=relaxed.
 *
 *   hostile-pci VICTIM_SLOT WITNESS_SLOT HOTPLUG_BASE
 *       VICTIM_SLOT / WITNESS_SLOT: device numbers on bus 0 (the witness is a bound virtio-pci disk that must keep
 *       working); HOTPLUG_BASE: the physical address (hex) of the hotplug register window, 0 to skip it.
 *       Prints KEY=VALUE lines, each attack's outcome as the test expects it (test/hostile/pci-attacks.ts).
 *
 * Interrupts the attacks make the device send go to an APIC id that does not exist (destination 0x55), so the
 * guest kernel never sees them; delivery modes are always "fixed".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define QSIZE 16u
#define NO_VECTOR 0xffffu
#define BAR_SIZE 0x10000u

typedef uint16_t __attribute__((aligned(1))) u16u;
typedef uint32_t __attribute__((aligned(1))) u32u;
typedef uint64_t __attribute__((aligned(1))) u64u;

/* virtio common configuration (virtio 1.2, 4.1.4.3) */
enum {
  C_DFSEL = 0x00, C_DF = 0x04, C_GFSEL = 0x08, C_GF = 0x0c, C_MSIX = 0x10, C_NUMQ = 0x12, C_STATUS = 0x14,
  C_QSEL = 0x16, C_QSIZE = 0x18, C_QVEC = 0x1a, C_QEN = 0x1c, C_QNOFF = 0x1e, C_QDESC = 0x20, C_QDRV = 0x28,
  C_QDEV = 0x30,
};
enum { R_ISR = 0x1000, R_DEVCFG = 0x2000, R_NOTIFY = 0x3000 };
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 0x40, S_FAILED = 0x80 };
enum { F_NEXT = 1, F_WRITE = 2 };
enum { CMD_MEM = 2, CMD_MASTER = 4 };
/* An MSI message to APIC id 0x55 (none exists), fixed delivery, vector 0x31. */
#define MSI_NOWHERE 0xfee55000u
#define MSI_DATA 0x31u

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QSIZE]; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[QSIZE]; };
struct req_hdr { uint32_t type, reserved; uint64_t sector; };
struct page { uint8_t *v; uint64_t pa; };

static int memfd;
static volatile uint8_t *ecam, *bar;
static uint64_t ecam_pa, bar_pa;
static int vslot, wslot;
static struct page ring_pg, hdr_pg, data_pg;
static struct desc *dt;
static struct avail *av;
static struct used *us;
static uint16_t avail_idx, used_seen;

static void die(const char *what) { printf("hostile-error=%s: %s\n", what, strerror(errno)); exit(2); }
static void put(const char *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(const char *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s=", k);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
}
static void sleep_ms(int ms) { usleep(ms * 1000); }

static volatile uint8_t *map_phys(uint64_t pa, size_t len) {
  void *m = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, (off_t)pa);
  return m == MAP_FAILED ? NULL : (volatile uint8_t *)m;
}

/* ---- configuration space: ECAM (bus 0) and mechanism #1 ---- */
static uint32_t mrd(volatile uint8_t *b, unsigned off, int size) {
  __sync_synchronize();
  if (size == 1) return b[off];
  if (size == 2) return *(volatile u16u *)(b + off);
  return *(volatile u32u *)(b + off);
}
static void mwr(volatile uint8_t *b, unsigned off, int size, uint32_t v) {
  if (size == 1) b[off] = (uint8_t)v;
  else if (size == 2) *(volatile u16u *)(b + off) = (uint16_t)v;
  else *(volatile u32u *)(b + off) = v;
  __sync_synchronize();
}
static unsigned ecam_off(int dev, int fn, unsigned off) { return (unsigned)dev << 15 | (unsigned)fn << 12 | off; }
static uint32_t cfg_rd(int dev, int fn, unsigned off, int size) { return mrd(ecam, ecam_off(dev, fn, off), size); }
static void cfg_wr(int dev, int fn, unsigned off, int size, uint32_t v) { mwr(ecam, ecam_off(dev, fn, off), size, v); }
static uint32_t cf8_addr(int bus, int dev, int fn, unsigned off) {
  return 0x80000000u | (unsigned)bus << 16 | (unsigned)dev << 11 | (unsigned)fn << 8 | (off & 0xfc);
}
static uint32_t cf8_rd(int bus, int dev, int fn, unsigned off, int size) {
  outl(cf8_addr(bus, dev, fn, off), 0xcf8);
  unsigned p = 0xcfc + (off & 3);
  return size == 1 ? inb(p) : size == 2 ? inw(p) : inl(p);
}
static void cf8_wr(int bus, int dev, int fn, unsigned off, int size, uint32_t v) {
  outl(cf8_addr(bus, dev, fn, off), 0xcf8);
  unsigned p = 0xcfc + (off & 3);
  if (size == 1) outb((uint8_t)v, p);
  else if (size == 2) outw((uint16_t)v, p);
  else outl(v, p);
}
#define V(off, size) cfg_rd(vslot, 0, off, size)
#define VW(off, size, v) cfg_wr(vslot, 0, off, size, v)

/* The capability list as "id@off,..." (at most 48 entries: a loop would show as 48). */
static int cap_list(int dev, char *out, size_t n) {
  out[0] = 0;
  int count = 0;
  unsigned at = (cfg_rd(dev, 0, 6, 2) & 0x10) ? cfg_rd(dev, 0, 0x34, 1) : 0;
  while (at >= 0x40 && count < 48) {
    size_t l = strlen(out);
    snprintf(out + l, n - l, "%s%02x@%02x", count ? "," : "", cfg_rd(dev, 0, at, 1), at);
    at = cfg_rd(dev, 0, at + 1, 1);
    count++;
  }
  return count;
}
static unsigned find_cap(int dev, unsigned id) {
  unsigned at = (cfg_rd(dev, 0, 6, 2) & 0x10) ? cfg_rd(dev, 0, 0x34, 1) : 0;
  for (int n = 0; at >= 0x40 && n < 48; n++, at = cfg_rd(dev, 0, at + 1, 1))
    if (cfg_rd(dev, 0, at, 1) == id) return at;
  return 0;
}

/* ---- the victim's BAR: virtio registers ---- */
static uint32_t cr(unsigned off, int size) { return mrd(bar, off, size); }
static void cw(unsigned off, int size, uint32_t v) { mwr(bar, off, size, v); }
static void cw64(unsigned off, uint64_t v) { cw(off, 4, (uint32_t)v); cw(off + 4, 4, (uint32_t)(v >> 32)); }
static uint32_t status(void) { return cr(C_STATUS, 1); }

static struct page phys_page(void) {
  struct page p;
  p.v = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
  if (p.v == MAP_FAILED) die("mmap");
  memset(p.v, 0, PAGE);
  int fd = open("/proc/self/pagemap", O_RDONLY);
  uint64_t e = 0;
  if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)p.v / PAGE) * 8) != 8) die("read pagemap");
  close(fd);
  if (!(e >> 63) || !(e & ((1ull << 55) - 1))) {
    errno = EPERM;
    die("pagemap gives no frame");
  }
  p.pa = (e & ((1ull << 55) - 1)) * PAGE;
  return p;
}

static void reset(void) {
  cw(C_STATUS, 1, 0);
  for (int i = 0; i < 1000 && status() != 0; i++) sleep_ms(1);
}

/* ACKNOWLEDGE, DRIVER, VERSION_1 only, FEATURES_OK */
static void negotiate(void) {
  cw(C_STATUS, 1, S_ACK);
  cw(C_STATUS, 1, S_ACK | S_DRIVER);
  cw(C_GFSEL, 4, 0);
  cw(C_GF, 4, 0);
  cw(C_GFSEL, 4, 1);
  cw(C_GF, 4, 1); /* VIRTIO_F_VERSION_1 */
  cw(C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
}

/* queue 0 of QSIZE on the ring page (cleared) with the given vector, enabled */
static void layout(uint16_t vector) {
  memset(ring_pg.v, 0, PAGE);
  dt = (struct desc *)ring_pg.v;
  av = (struct avail *)(ring_pg.v + 0x400);
  us = (struct used *)(ring_pg.v + 0x800);
  avail_idx = used_seen = 0;
  cw(C_QSEL, 2, 0);
  cw(C_QSIZE, 2, QSIZE);
  cw64(C_QDESC, ring_pg.pa);
  cw64(C_QDRV, ring_pg.pa + 0x400);
  cw64(C_QDEV, ring_pg.pa + 0x800);
  cw(C_QVEC, 2, vector);
  cw(C_QEN, 2, 1);
}

/* reset, negotiate, queue 0, DRIVER_OK; the status read back */
static uint32_t setup(uint16_t vector) {
  reset();
  negotiate();
  layout(vector);
  cw(C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
  return status();
}

static void d(int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  dt[i].addr = addr;
  dt[i].len = len;
  dt[i].flags = flags;
  dt[i].next = next;
}
static void read_chain(void) {
  struct req_hdr *h = (struct req_hdr *)hdr_pg.v;
  h->type = 0;
  h->reserved = 0;
  h->sector = 0;
  hdr_pg.v[0x100] = 0xff;
  memset(data_pg.v, 0, 512);
  d(0, hdr_pg.pa, 16, F_NEXT, 1);
  d(1, data_pg.pa, 512, F_WRITE | F_NEXT, 2);
  d(2, hdr_pg.pa + 0x100, 1, F_WRITE, 0);
}
static void publish(uint16_t head) {
  av->ring[avail_idx % QSIZE] = head;
  __sync_synchronize();
  av->idx = ++avail_idx;
  __sync_synchronize();
}
static void kick(void) { cw(R_NOTIFY, 2, 0); }

/* needs-reset, used:<status byte>, or silent after ms milliseconds (polling: no interrupt is used) */
static const char *outcome_in(int ms) {
  static char buf[64];
  for (int i = 0; i < ms; i++) {
    __sync_synchronize();
    uint32_t st = status();
    if (st != 0xff && (st & S_NEEDS_RESET)) return "needs-reset"; /* 0xff: nothing decodes the BAR */
    if (*(volatile uint16_t *)&us->idx != used_seen) {
      used_seen = us->idx;
      snprintf(buf, sizeof buf, "used:%u", *(volatile uint8_t *)(hdr_pg.v + 0x100));
      return buf;
    }
    sleep_ms(1);
  }
  return "silent";
}
static const char *outcome(void) { return outcome_in(2000); }

/* A valid one-sector read on a fresh set-up: its outcome and the first 8 data bytes. */
static void good(const char *name, uint16_t vector) {
  char k[64];
  uint32_t st = setup(vector);
  snprintf(k, sizeof k, "v-%s", name);
  if (!(st & S_DRIVER_OK)) {
    put(k, "refused:%02x", st);
    return;
  }
  read_chain();
  publish(0);
  kick();
  const char *o = outcome();
  put(k, "%s:%.8s", o, (char *)data_pg.v);
}

/* ---------------------------------------------------------------- configuration space attacks */
static uint32_t bar_lo, bar_hi, cmd_saved, line_saved;

static void restore_cfg(void) {
  VW(0x04, 2, 0);
  VW(0x10, 4, bar_lo);
  VW(0x14, 4, bar_hi);
  VW(0x3c, 1, line_saved);
  VW(0x04, 2, CMD_MEM | CMD_MASTER);
}

/* The victim's msix_config through its BAR at the original place (0xffff: nothing decodes there). */
static uint32_t victim_mark(void) { return cr(C_MSIX, 2); }

static void cfg_attacks(void) {
  char before[512], after[512];
  uint32_t id = V(0, 4);
  put("pci-victim-id", "%08x", id);
  put("pci-witness-id", "%08x", cfg_rd(wslot, 0, 0, 4));
  put("pci-hostbridge-id", "%08x", cfg_rd(0, 0, 0, 4));
  int ncaps = cap_list(vslot, before, sizeof before);
  put("pci-caps", "%s", before);

  /* read-only fields: ids, class, header type, capabilities pointer, every capability's id and next byte, pin */
  unsigned ro[64];
  int nro = 0;
  ro[nro++] = 0x00; ro[nro++] = 0x02; ro[nro++] = 0x08; ro[nro++] = 0x09; ro[nro++] = 0x0a; ro[nro++] = 0x0b;
  ro[nro++] = 0x0e; ro[nro++] = 0x2c; ro[nro++] = 0x2e; ro[nro++] = 0x34; ro[nro++] = 0x3d;
  unsigned at = V(0x34, 1);
  for (int n = 0; at >= 0x40 && n < ncaps && nro < 62; n++) {
    ro[nro++] = at;
    ro[nro++] = at + 1;
    at = V(at + 1, 1);
  }
  char changed[256] = "";
  for (int i = 0; i < nro; i++) {
    uint32_t was = V(ro[i], 1);
    VW(ro[i], 1, ~was & 0xff);
    VW(ro[i], 1, ro[i]); /* a capability pointer aimed at itself would make a loop */
    if (V(ro[i], 1) != was) snprintf(changed + strlen(changed), sizeof changed - strlen(changed), "%x,", ro[i]);
  }
  VW(0x34, 1, 0x40);
  put("pci-ro", "%s", changed[0] ? changed : "kept");

  bar_lo = V(0x10, 4);
  bar_hi = V(0x14, 4);
  cmd_saved = V(0x04, 2);
  line_saved = V(0x3c, 1);
  put("pci-bar0", "%08x%08x", bar_hi, bar_lo);

  /* BAR sizing and the expansion ROM */
  VW(0x04, 2, 0);
  char sizing[128] = "";
  for (unsigned off = 0x10; off <= 0x24; off += 4) {
    VW(off, 4, 0xffffffffu);
    snprintf(sizing + strlen(sizing), sizeof sizing - strlen(sizing), "%08x,", V(off, 4));
  }
  VW(0x30, 4, 0xfffff801u);
  snprintf(sizing + strlen(sizing), sizeof sizing - strlen(sizing), "rom:%08x", V(0x30, 4));
  put("pci-sizing", "%s", sizing);
  restore_cfg();

  /* every offset 0..255 with sizes 1/2/4, aligned or not, through ECAM: read, write all ones, write zeros;
   * past 255 (this function's space is 256 bytes) every 61st offset; then mechanism #1 byte by byte */
  uint64_t reads = 0;
  for (unsigned off = 0; off < 4096; off += off < 256 ? 1 : 61)
    for (int size = 1; size <= 4; size *= 2) {
      if (off + size > 4096) continue;
      reads += V(off, size);
      VW(off, size, 0xffffffffu);
      VW(off, size, 0);
    }
  for (unsigned off = 0; off < 256; off++) {
    reads += cf8_rd(0, vslot, 0, off, 1) + cf8_rd(0, vslot, 0, off & ~1u, 2);
    cf8_wr(0, vslot, 0, off, 1, 0xff);
    cf8_wr(0, vslot, 0, off, 1, 0);
  }
  restore_cfg();
  int ncaps2 = cap_list(vslot, after, sizeof after);
  put("pci-sweep", "%s", ncaps2 == ncaps && !strcmp(before, after) && V(0, 4) == id ? "kept" : after);
  put("pci-sweep-answers", "%s", cr(C_NUMQ, 2) != 0xffff ? "yes" : "no");
  (void)reads;

  /* the host bridge's own configuration, every byte through mechanism #1 */
  uint32_t hb = cf8_rd(0, 0, 0, 0, 4);
  for (unsigned off = 0; off < 256; off++) {
    cf8_wr(0, 0, 0, off, 1, 0xff);
    cf8_wr(0, 0, 0, off, 1, 0);
  }
  put("pci-hostbridge", "%s", cf8_rd(0, 0, 0, 0, 4) == hb && cfg_rd(0, 0, 0x10, 4) == 0 ? "kept" : "changed");

  /* functions, devices and buses that do not exist; mechanism #1 oddities */
  uint32_t all = 0xffffffffu;
  cfg_wr(vslot, 3, 0x04, 2, 0xffff);
  cfg_wr(29, 0, 0x10, 4, 0x12345000);
  cf8_wr(1, 0, 0, 0x04, 4, 0xffffffff);
  cf8_wr(255, 31, 7, 0x3c, 4, 0);
  all &= cfg_rd(vslot, 3, 0, 4) & cfg_rd(29, 0, 0, 4) & cfg_rd(31, 7, 0, 4) & cf8_rd(1, 0, 0, 0, 4);
  all &= cf8_rd(255, 31, 7, 0, 4) & cf8_rd(0, vslot, 5, 0, 4) & V(0x100, 4) & V(0xffc, 4) & V(0x101, 4);
  outl(cf8_addr(0, vslot, 0, 0) & 0x7fffffff, 0xcf8); /* enable bit clear */
  all &= inl(0xcfc);
  outb(0x06, 0xcf9); /* a chipset's reset control register elsewhere: not here */
  outw(0x1234, 0xcf8);
  all &= inw(0xcfa) | 0xffff0000u;
  outl(cf8_addr(0, vslot, 0, 0), 0xcf8);
  uint32_t odd = inl(0xcfd); /* 4 bytes from 0xCFD: past the data port */
  put("pci-absent", "%08x", all);
  put("pci-cf8-odd", "%08x", odd);
  put("pci-cf8-victim", "%08x", cf8_rd(0, vslot, 0, 0, 4));

  /* BAR moves: each with decode off, then on; what the original place answers, and what the new place holds.
   * A refused place leaves the BAR unmapped (0xffff at the original place) and the holder answering there. */
  cw(C_MSIX, 2, 1); /* the victim's mark: msix_config 1 (the witness's driver uses 0) */
  put("pci-mark", "%04x", victim_mark());
  uint64_t wbar = ((uint64_t)cfg_rd(wslot, 0, 0x14, 4) << 32) | (cfg_rd(wslot, 0, 0x10, 4) & ~0xfu);
  uint64_t orig = ((uint64_t)bar_hi << 32) | (bar_lo & ~0xfu);
  struct { const char *name; uint64_t at; int probe; } moves[] = {
      {"ram", 0x1000000ull, 0},          {"witness", wbar, 1},        {"ecam", ecam_pa, 1},
      {"lapic", 0xfee00000ull, 1},       {"ioapic", 0xfec00000ull, 0}, {"above-2-52", 1ull << 52, 0},
      {"wrap", 0xfffffffffffe0000ull, 0}, {"sizing", 0xffffffffffff0000ull, 0}, {"zero", 0, 0},
      {"self-plus", orig + BAR_SIZE, 2},
  };
  for (unsigned i = 0; i < sizeof moves / sizeof moves[0]; i++) {
    VW(0x04, 2, 0);
    VW(0x10, 4, (uint32_t)moves[i].at | 0xc);
    VW(0x14, 4, (uint32_t)(moves[i].at >> 32));
    VW(0x04, 2, CMD_MEM | CMD_MASTER);
    uint32_t old = victim_mark();
    char k[64], probe[32] = "-";
    if (moves[i].probe) {
      volatile uint8_t *m = map_phys(moves[i].at, PAGE);
      if (m) {
        uint32_t v = mrd(m, C_MSIX, 2);
        const char *other = moves[i].probe == 2 ? "other" : "holder";
        snprintf(probe, sizeof probe, "%s", v == 1 ? "victim" : other);
        munmap((void *)m, PAGE);
      } else snprintf(probe, sizeof probe, "nomap");
    }
    restore_cfg();
    snprintf(k, sizeof k, "pci-move-%s", moves[i].name);
    put(k, "%s:%s:%s", old == 0xffff ? "unmapped" : "mapped", probe, victim_mark() == 1 ? "back" : "lost");
  }
  VW(0x30, 4, 0xfeb00001u); /* the ROM BAR enabled somewhere: nothing decodes */
  put("pci-rom", "%08x", V(0x30, 4));
  restore_cfg();
}

/* ---------------------------------------------------------------- virtio common configuration attacks */
static void virtio_attacks(void) {
  good("good-before", NO_VECTOR);

  /* queue_select out of range: nothing to read, every layout write refused */
  setup(NO_VECTOR);
  char out[128] = "";
  uint16_t sels[] = {1, 5, 0x7fff, 0xffff};
  for (unsigned i = 0; i < 4; i++) {
    reset();
    negotiate();
    cw(C_QSEL, 2, sels[i]);
    cw(C_QSIZE, 2, 8);
    cw64(C_QDESC, 0x4000000000ull);
    cw(C_QVEC, 2, 0);
    cw(C_QEN, 2, 1);
    snprintf(out + strlen(out), sizeof out - strlen(out), "%x/%x/%x/%x,", cr(C_QSIZE, 2), cr(C_QVEC, 2),
             cr(C_QEN, 2), cr(C_QDESC, 4));
  }
  put("v-qsel", "%s", out);

  /* vectors outside the table read back NO_VECTOR */
  reset();
  cw(C_MSIX, 2, 0x1234);
  uint32_t mc = cr(C_MSIX, 2);
  cw(C_QSEL, 2, 0);
  cw(C_QVEC, 2, 7);
  put("v-vectors", "%04x,%04x", mc, cr(C_QVEC, 2));

  /* feature selects out of range */
  reset();
  cw(C_STATUS, 1, S_ACK | S_DRIVER);
  uint32_t dfs[] = {2, 3, 0x80, 0xffffffffu}, df = 0;
  for (unsigned i = 0; i < 4; i++) {
    cw(C_DFSEL, 4, dfs[i]);
    df |= cr(C_DF, 4);
    cw(C_GFSEL, 4, dfs[i]);
    cw(C_GF, 4, 0xffffffffu);
  }
  cw(C_GFSEL, 4, 0);
  cw(C_GF, 4, 0);
  cw(C_GFSEL, 4, 1);
  cw(C_GF, 4, 1);
  cw(C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
  put("v-featsel", "%08x:%02x", df, status());

  /* device_status games */
  reset();
  cw(C_STATUS, 1, S_ACK | S_DRIVER | S_DRIVER_OK); /* DRIVER_OK without FEATURES_OK */
  uint32_t s1 = status();
  reset();
  cw(C_STATUS, 1, S_ACK | S_DRIVER);
  cw(C_GFSEL, 4, 1);
  cw(C_GF, 4, 0); /* no VERSION_1 */
  cw(C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
  uint32_t s2 = status();
  setup(NO_VECTOR);
  cw(C_STATUS, 1, S_ACK); /* bits cleared without a reset */
  uint32_t s3 = status();
  cw(C_STATUS, 1, S_NEEDS_RESET | S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
  uint32_t s4 = status();
  cw(C_STATUS, 1, 0xff);
  uint32_t s5 = status();
  put("v-status", "%02x,%02x,%02x,%02x,%02x", s1, s2, s3, s4, s5);

  /* the queue's layout changed after queue_enable (before DRIVER_OK) and after DRIVER_OK: ignored */
  reset();
  negotiate();
  layout(NO_VECTOR);
  cw(C_QSIZE, 2, 3);
  cw64(C_QDESC, 0x4000000000ull);
  cw(C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
  cw(C_QEN, 2, 0);
  cw(C_QSIZE, 2, 2);
  cw64(C_QDRV, 0x4000000000ull);
  cw64(C_QDEV, bar_pa);
  read_chain();
  publish(0);
  kick();
  put("v-relayout", "%s:%x", outcome(), cr(C_QSIZE, 2));

  /* notify writes at wrong offsets, widths and queues (none may start the request), then a valid kick */
  setup(NO_VECTOR);
  read_chain();
  publish(0);
  cw(R_NOTIFY + 1, 1, 0);
  cw(R_NOTIFY + 2, 2, 0);
  cw(R_NOTIFY + 0x100, 2, 64);
  cw(R_NOTIFY + 0xffc, 4, 0xffffffffu);
  cw(R_NOTIFY + 20, 2, 5);
  cw(R_NOTIFY + 0x1000 - 2, 2, 0);
  cw(R_NOTIFY + 0x1000 - 1, 1, 0);
  const char *after_bad = outcome_in(300);
  char ab[32];
  snprintf(ab, sizeof ab, "%s", after_bad);
  if (!strcmp(ab, "silent")) kick();
  put("v-notify", "%s:%s", ab, outcome());
  for (int i = 0; i < 3000; i++) cw(R_NOTIFY + 4 * (i % 8), 2, (uint16_t)i); /* a storm over queues 0..7 */
  read_chain();
  publish(0);
  kick();
  put("v-notify-storm", "%s", outcome());

  /* ISR and device configuration with odd sizes and offsets */
  char odd[160] = "";
  cr(R_ISR, 1); /* clears what the reads above left */
  snprintf(odd, sizeof odd, "%x,%x,%x,%x,%x,%x,%x", cr(R_ISR, 4), cr(R_ISR + 1, 1), cr(R_ISR + 2, 2),
           cr(R_DEVCFG + 0xffe, 4), cr(R_DEVCFG + 0x1, 4), cr(R_DEVCFG + 0x800, 1), cr(R_DEVCFG + 0x0fff, 1));
  uint64_t cap = *(volatile uint64_t *)(bar + R_DEVCFG);
  cw(R_ISR, 4, 0xffffffff);
  cw(R_DEVCFG, 8, 0xffffffff);
  cw(R_DEVCFG + 0xffd, 4, 0xffffffff);
  uint64_t cap2 = *(volatile uint64_t *)(bar + R_DEVCFG);
  put("v-odd", "%s:%llu:%llu", odd, (unsigned long long)cap, (unsigned long long)cap2);

  /* the PCI configuration access capability (virtio 1.2, 4.1.4.9): a window into the BAR through config space;
   * windows past the BAR, of 3 bytes, unaligned or on another BAR do nothing (the data register keeps its value) */
  unsigned pc = 0, at = V(0x34, 1);
  for (int n = 0; at >= 0x40 && n < 48 && !pc; n++, at = V(at + 1, 1))
    if (V(at, 1) == 0x09 && V(at + 3, 1) == 5) pc = at;
  uint32_t nq = 0, kept = 0;
  if (pc) {
    VW(pc + 4, 1, 0);
    VW(pc + 8, 4, C_NUMQ);
    VW(pc + 12, 4, 2);
    nq = V(pc + 16, 4) & 0xffff;
    VW(pc + 16, 4, 0xdeadbeef);
    uint32_t wins[][3] = {
        {0, 0xfffe, 4}, {0, 0x10000, 1}, {0, 0x12, 3}, {0, 0x13, 2}, {5, 0x12, 2}, {0, 0xffffffff, 1}};
    for (unsigned i = 0; i < sizeof wins / sizeof wins[0]; i++) {
      VW(pc + 4, 1, wins[i][0]);
      VW(pc + 8, 4, wins[i][1]);
      VW(pc + 12, 4, wins[i][2]);
      kept |= V(pc + 16, 4) ^ 0xdeadbeef;
      VW(pc + 16, 4, 0xdeadbeef);
    }
  }
  put("v-pcicfg", "%x,%s", nq, pc ? (kept ? "changed" : "kept") : "none");

  /* a descriptor loop: DEVICE_NEEDS_RESET on PCI too */
  setup(NO_VECTOR);
  read_chain();
  d(2, hdr_pg.pa + 0x100, 1, F_WRITE | F_NEXT, 1);
  publish(0);
  kick();
  put("v-loop", "%s", outcome());

  /* memory decode and bus mastering off while a request is in flight, then on */
  setup(NO_VECTOR);
  read_chain();
  publish(0);
  kick();
  VW(0x04, 2, 0);
  uint32_t off_mark = victim_mark();
  sleep_ms(300);
  const char *o = outcome_in(1);
  char inflight[32];
  snprintf(inflight, sizeof inflight, "%s", o);
  VW(0x04, 2, CMD_MEM | CMD_MASTER);
  if (!strcmp(inflight, "silent")) snprintf(inflight, sizeof inflight, "later-%s", outcome());
  put("v-decode-off", "%04x:%s", off_mark, inflight);
  good("good-after-decode", NO_VECTOR);
}

/* ---------------------------------------------------------------- MSI-X */
static volatile uint8_t *tbl, *pba;
static unsigned mcap;
static uint32_t ctrl(void) { return V(mcap + 2, 2); }
static void set_ctrl(uint32_t v) { VW(mcap + 2, 2, v); }
static void entry(int i, uint64_t addr, uint32_t data, uint32_t vc) {
  mwr(tbl, 16 * i, 4, (uint32_t)addr);
  mwr(tbl, 16 * i + 4, 4, (uint32_t)(addr >> 32));
  mwr(tbl, 16 * i + 8, 4, data);
  mwr(tbl, 16 * i + 12, 4, vc);
}

static void msix_attacks(void) {
  mcap = find_cap(vslot, 0x11);
  put("m-msi-cap", "%s", find_cap(vslot, 0x05) ? "present" : "none");
  if (!mcap) {
    put("m-cap", "none");
    return;
  }
  uint32_t c = ctrl(), t = V(mcap + 4, 4), p = V(mcap + 8, 4);
  unsigned nvec = (c & 0x7ff) + 1;
  tbl = bar + (t & ~7u);
  pba = bar + (p & ~7u);
  put("m-cap", "vectors:%u table:%x pba:%x", nvec, t, p);

  /* odd sizes and unaligned accesses on entry 0: reserved bits stay 0, the address's low 2 bits too */
  set_ctrl(0);
  for (int i = 0; i < 16; i++) mwr(tbl, i, 1, 0xa0 + i);
  mwr(tbl, 1, 2, 0xffff);
  mwr(tbl, 5, 4, 0x12345678);
  mwr(tbl, 13, 2, 0xffff);
  *(volatile uint64_t *)(tbl + 16) = 0xdeadbeefcafebabfull;
  mwr(tbl, 28, 4, 0xfffffffe);
  put("m-odd", "%08x,%08x,%08x,%08x;%08x,%08x,%08x,%08x", mrd(tbl, 0, 4), mrd(tbl, 4, 4), mrd(tbl, 8, 4),
      mrd(tbl, 12, 4), mrd(tbl, 16, 4), mrd(tbl, 20, 4), mrd(tbl, 24, 4), mrd(tbl, 28, 4));

  /* past the table (entries up to 2047 of the region) and the PBA written: nothing sticks */
  uint32_t past = 0;
  for (unsigned off = 16 * nvec; off < 0x8000; off += 0x3f0 + 4) {
    mwr(tbl, off, 4, 0xffffffff);
    past |= mrd(tbl, off, 4);
  }
  mwr(pba, 0, 4, 0xffffffff);
  mwr(pba, 4, 4, 0xffffffff);
  mwr(pba, 3, 1, 0xff);
  put("m-past", "%08x,%08x", past, mrd(pba, 0, 4) | mrd(pba, 4, 4));

  /* a masked vector keeps its interrupt pending (PBA), unmasking delivers it; entries out of 0xFEExxxxx */
  entry(0, MSI_NOWHERE, MSI_DATA, 1);
  entry(1, 0x00055000ull, MSI_DATA, 1); /* not an interrupt address (RAM), the same destination bits */
  set_ctrl(0x8000);
  setup(0);
  read_chain();
  publish(0);
  kick();
  const char *o = outcome();
  char o1[32];
  snprintf(o1, sizeof o1, "%s", o);
  uint32_t pend = mrd(pba, 0, 4);
  mwr(tbl, 12, 4, 0);
  sleep_ms(20);
  put("m-pending", "%s:%x:%x", o1, pend, mrd(pba, 0, 4));

  setup(1);
  entry(1, 0x00055000ull, MSI_DATA, 0);
  read_chain();
  publish(0);
  kick();
  const char *g1 = outcome();
  char g1b[32];
  snprintf(g1b, sizeof g1b, "%s", g1);
  entry(1, 0xdeadbeef00055000ull, 0xffff0000u | MSI_DATA, 0);
  read_chain();
  publish(0);
  kick();
  put("m-garbage", "%s:%s:%x", g1b, outcome(), mrd(pba, 0, 4));

  /* function mask and entry mask storms while interrupts are pending and delivered */
  setup(0);
  entry(0, MSI_NOWHERE, MSI_DATA, 0);
  for (int i = 0; i < 400; i++) {
    set_ctrl(0x8000 | ((i & 1) << 14));
    mwr(tbl, 12, 4, i & 2 ? 1 : 0);
    if (i % 50 == 0) {
      read_chain();
      publish(0);
      kick();
    }
  }
  set_ctrl(0x8000);
  mwr(tbl, 12, 4, 0);
  for (int i = 0; i < 100; i++) set_ctrl(i & 1 ? 0 : 0x8000); /* enable toggles */
  set_ctrl(0x8000);
  sleep_ms(50);
  put("m-storm", "%x:%x", ctrl(), mrd(pba, 0, 4));

  /* MSI-X on with no vector chosen: no interrupt (neither MSI-X nor the ISR), the request completes */
  setup(NO_VECTOR);
  read_chain();
  publish(0);
  kick();
  const char *nv = outcome();
  char nvb[32];
  snprintf(nvb, sizeof nvb, "%s", nv);
  put("m-novector", "%s:%x", nvb, cr(R_ISR, 1));

  /* a queue vector past the table, then enabling with everything masked */
  set_ctrl(0xc000);
  setup(0);
  cw(C_QSEL, 2, 0);
  cw(C_QVEC, 2, nvec + 3);
  put("m-qvec-past", "%04x", cr(C_QVEC, 2));
  set_ctrl(0);
  reset();
  for (unsigned i = 0; i < nvec; i++) entry(i, 0, 0, 1);
}

/* ---------------------------------------------------------------- the hotplug controller */
static void hotplug_attacks(uint64_t base) {
  if (!base) {
    put("h-storm", "skipped");
    return;
  }
  volatile uint8_t *m = map_phys(base & ~(uint64_t)(PAGE - 1), PAGE);
  if (!m) die("mmap hotplug window");
  volatile uint8_t *h = m + (base & (PAGE - 1));
  for (int i = 0; i < 1000; i++) mwr(h, 8, 4, i & 1 ? 0xffffffffu : (1u << vslot) | (1u << wslot) | 0x80000000u);
  for (int i = 0; i < 100; i++) mwr(h, 8, 4, 0xfffffff9u); /* every slot but 1 and 2 */
  mwr(h, 0xc, 4, 7);
  uint32_t seg = mrd(h, 0xc, 4);
  mwr(h, 8, 4, 0xffffffffu);
  mwr(h, 0xc, 4, 0);
  mwr(h, 8, 1, 0xff);
  mwr(h, 9, 2, 0xffff);
  mwr(h, 2, 4, 0xffffffffu);
  uint32_t odd = mrd(h, 1, 1) | mrd(h, 2, 2) | mrd(h, 6, 4);
  put("h-storm", "seg:%x odd:%x pseg:%x b0ej:%x", seg, odd, mrd(h, 0xc, 4), mrd(h, 8, 4));
}

/* ---------------------------------------------------------------- ACPI PM1 registers (from the FADT) */
static void acpi_attacks(void) {
  int fd = open("/sys/firmware/acpi/tables/FACP", O_RDONLY);
  uint8_t f[96];
  if (fd < 0 || read(fd, f, sizeof f) < 92) {
    put("a-pm1", "no-fadt");
    return;
  }
  close(fd);
  uint32_t evt, cnt;
  memcpy(&evt, f + 56, 4);
  memcpy(&cnt, f + 64, 4);
  if (!evt || !cnt || ioperm(evt, 4, 1) || ioperm(cnt, 2, 1)) {
    put("a-pm1", "no-ports");
    return;
  }
  uint16_t en = inw(evt + 2), ctl = inw(cnt);
  /* status (write 1 to clear), enable garbage, every sleep type but S5 (5: poweroff) with SLP_EN, odd sizes */
  for (unsigned i = 0; i < 200; i++) {
    outw(0xffff, evt);
    outw((uint16_t)(i * 0x9e37), evt + 2);
    unsigned typ = i % 8 == 5 ? 7 : i % 8;
    outw((uint16_t)(1u << 13 | typ << 10 | (i & 1)), cnt);
    outb(0xff, evt + 1);
    outl(0xffffffffu, evt);
    outb((uint8_t)(i & 1 ? i : i & ~0x20u), cnt + 1 - (i & 1)); /* the high byte never with SLP_EN */
  }
  outw(en, evt + 2);
  outw(ctl, cnt);
  put("a-pm1", "en:%s ctl:%04x sts:%04x", inw(evt + 2) == en ? "kept" : "lost", inw(cnt), inw(evt) & ~0x100u);
}

int main(int argc, char **argv) {
  setvbuf(stdout, 0, _IOLBF, 0);
  if (argc != 4) {
    fprintf(stderr, "usage: hostile-pci VICTIM_SLOT WITNESS_SLOT HOTPLUG_BASE\n");
    return 2;
  }
  vslot = atoi(argv[1]);
  wslot = atoi(argv[2]);
  uint64_t hp = strtoull(argv[3], 0, 16);
  if (iopl(3)) die("iopl");
  memfd = open("/dev/mem", O_RDWR | O_SYNC);
  if (memfd < 0) die("open /dev/mem");
  int mcfg = open("/sys/firmware/acpi/tables/MCFG", O_RDONLY);
  uint8_t t[64];
  if (mcfg < 0 || read(mcfg, t, sizeof t) < 60) die("read MCFG");
  memcpy(&ecam_pa, t + 44, 8);
  put("pci-ecam", "%llx segment:%u buses:%u-%u", (unsigned long long)ecam_pa, t[52] | t[53] << 8, t[54], t[55]);
  ecam = map_phys(ecam_pa, 1u << 20);
  if (!ecam) die("mmap ECAM");
  uint32_t lo = cfg_rd(vslot, 0, 0x10, 4), hi = cfg_rd(vslot, 0, 0x14, 4);
  bar_pa = ((uint64_t)hi << 32) | (lo & ~0xfu);
  bar = map_phys(bar_pa, BAR_SIZE);
  if (!bar) die("mmap BAR 0");
  ring_pg = phys_page();
  hdr_pg = phys_page();
  data_pg = phys_page();
  VW(0x04, 2, CMD_MEM | CMD_MASTER);
  cfg_attacks();
  virtio_attacks();
  msix_attacks();
  hotplug_attacks(hp);
  acpi_attacks();
  good("good-after", NO_VECTOR);
  reset();
  put("pci-done", "1");
  return 0;
}
