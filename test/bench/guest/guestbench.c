/*
 * Runs inside the benchmark guests (static: the guest kit has busybox only) and in the sandbox's L1.
 *   guestbench seqwrite DEV MB SECS    O_DIRECT 1 MiB writes from offset 0, fdatasync; MB/s
 *   guestbench seqread  DEV MB SECS    O_DIRECT 1 MiB reads from offset 0; MB/s
 *   guestbench randread DEV SPAN_MB SECS  O_DIRECT 4 KiB reads at random 4 KiB-aligned offsets; IOPS
 *   guestbench ifup IFNAME ADDR MASK   sets an IPv4 address and brings the interface up (no `ip` in busybox)
 *   guestbench tcpsend ADDR PORT MB SECS  connects (retrying for 20 s), sends zeros, closes
 *   guestbench tick MS                 writes "TICK" lines to stdout every MS ms for ever (a pause the guest
 *                                      lives through shows up as a gap between two lines on the host)
 * Each measurement prints one line: "BENCH <name> <value>" (sequential stops at MB or SECS).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void die(const char *what) { fprintf(stderr, "guestbench: %s: %s\n", what, strerror(errno)); exit(2); }

static int seq(const char *dev, long mb, double secs, int write) {
  int fd = open(dev, (write ? O_WRONLY : O_RDONLY) | O_DIRECT);
  if (fd < 0) die(dev);
  void *buf;
  if (posix_memalign(&buf, 4096, 1 << 20)) die("posix_memalign");
  memset(buf, 0x5a, 1 << 20);
  long done = 0;
  double t0 = now();
  while (done < mb && now() - t0 < secs) {
    ssize_t n = write ? pwrite(fd, buf, 1 << 20, (off_t)done << 20) : pread(fd, buf, 1 << 20, (off_t)done << 20);
    if (n != (1 << 20)) die(write ? "pwrite" : "pread");
    done++;
  }
  if (write && fdatasync(fd) < 0) die("fdatasync");
  double t = now() - t0;
  printf("BENCH %s_MBps %.2f\nBENCH %s_MiB %ld\n", write ? "seqwrite" : "seqread", done * 1.048576 / t, write ? "seqwrite" : "seqread", done);
  close(fd);
  return 0;
}

static int randread(const char *dev, long spanMb, double secs) {
  int fd = open(dev, O_RDONLY | O_DIRECT);
  if (fd < 0) die(dev);
  void *buf;
  if (posix_memalign(&buf, 4096, 4096)) die("posix_memalign");
  uint64_t blocks = ((uint64_t)spanMb << 20) / 4096, x = 88172645463325252ull;
  long ios = 0;
  double t0 = now(), t;
  do {
    for (int k = 0; k < 64; k++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17; /* xorshift64 */
      if (pread(fd, buf, 4096, (off_t)((x % blocks) * 4096)) != 4096) die("pread");
      ios++;
    }
    t = now() - t0;
  } while (t < secs);
  printf("BENCH randread_iops %.1f\n", ios / t);
  close(fd);
  return 0;
}

static int ifup(const char *name, const char *addr, const char *mask) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) die("socket");
  struct ifreq r;
  memset(&r, 0, sizeof r);
  strncpy(r.ifr_name, name, IFNAMSIZ - 1);
  struct sockaddr_in *sin = (struct sockaddr_in *)&r.ifr_addr;
  sin->sin_family = AF_INET;
  if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) { fprintf(stderr, "guestbench: bad address %s\n", addr); return 2; }
  if (ioctl(s, SIOCSIFADDR, &r) < 0) die("SIOCSIFADDR");
  if (inet_pton(AF_INET, mask, &sin->sin_addr) != 1) { fprintf(stderr, "guestbench: bad mask %s\n", mask); return 2; }
  if (ioctl(s, SIOCSIFNETMASK, &r) < 0) die("SIOCSIFNETMASK");
  if (ioctl(s, SIOCGIFFLAGS, &r) < 0) die("SIOCGIFFLAGS");
  r.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &r) < 0) die("SIOCSIFFLAGS");
  close(s);
  return 0;
}

static int tcpsend(const char *addr, int port, long mb, double secs) {
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) { fprintf(stderr, "guestbench: bad address %s\n", addr); return 2; }
  int s = -1;
  for (double t0 = now(); now() - t0 < 20; usleep(100000)) {
    s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0) break;
    close(s); s = -1;
  }
  if (s < 0) die("connect");
  static char buf[1 << 16];
  long long sent = 0, limit = (long long)mb << 20;
  double t0 = now();
  while (sent < limit && now() - t0 < secs) {
    ssize_t n = send(s, buf, sizeof buf, 0);
    if (n < 0) { if (errno == EINTR) continue; die("send"); }
    sent += n;
  }
  shutdown(s, SHUT_WR);
  char tmp[64];
  while (recv(s, tmp, sizeof tmp, 0) > 0) {} /* wait for the receiver to close: all data arrived */
  double t = now() - t0;
  printf("BENCH tcpsend_MBps %.2f\nBENCH tcpsend_MiB %.1f\n", sent / 1e6 / t, sent / 1048576.0);
  close(s);
  return 0;
}

static int tick(long ms) {
  struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
  for (;;) {
    if (write(1, "TICK\n", 5) != 5) die("write");
    while (nanosleep(&d, &d) && errno == EINTR) {}
    d.tv_sec = ms / 1000;
    d.tv_nsec = (ms % 1000) * 1000000L;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 5 && !strcmp(argv[1], "seqwrite")) return seq(argv[2], atol(argv[3]), atof(argv[4]), 1);
  if (argc >= 5 && !strcmp(argv[1], "seqread")) return seq(argv[2], atol(argv[3]), atof(argv[4]), 0);
  if (argc >= 5 && !strcmp(argv[1], "randread")) return randread(argv[2], atol(argv[3]), atof(argv[4]));
  if (argc >= 5 && !strcmp(argv[1], "ifup")) return ifup(argv[2], argv[3], argv[4]);
  if (argc >= 6 && !strcmp(argv[1], "tcpsend")) return tcpsend(argv[2], atoi(argv[3]), atol(argv[4]), atof(argv[5]));
  if (argc >= 3 && !strcmp(argv[1], "tick")) return tick(atol(argv[2]));
  fprintf(stderr, "usage: guestbench seqwrite|seqread DEV MB SECS | randread DEV SPAN_MB SECS | ifup IF ADDR MASK | tcpsend ADDR PORT MB SECS | tick MS\n");
  return 2;
}
