/*
 * vsockio: the guest kit's vsock client/server (static: the guest has busybox and no socat).
 * Commands (each prints KEY=VALUE lines for the test to read):
 *   vsockio connect CID PORT MESSAGE
 *       Connects to CID:PORT (retrying for 30 s while refused), writes MESSAGE, half-closes
 *       (shutdown SHUT_WR), reads to EOF and prints connect-reply=<what it read>.
 *   vsockio listen PORT
 *       Listens on any CID, PORT; prints listen-ready=PORT, accepts one connection, reads one
 *       line (up to '\n' or EOF), prints listen-got=<line> and writes back "echo:<line>\n".
 *   vsockio bulk CID PORT BYTES
 *       Connects, writes BYTES bytes of a pattern (i & 0xff), half-closes, reads the peer's
 *       answer to EOF and prints bulk-reply=<answer> (the credit flow control path).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fail(const char *what) {
  printf("vsockio-error=%s: %s\n", what, strerror(errno));
  return 1;
}

static int dial(unsigned cid, unsigned port) {
  for (int i = 0; i < 300; i++) {
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    int e = errno;
    close(fd);
    errno = e;
    if (e != ECONNREFUSED && e != ECONNRESET && e != ETIMEDOUT) return -1;
    struct timespec t = {0, 100 * 1000 * 1000};
    nanosleep(&t, 0);
  }
  return -1;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads to EOF into buf (at most cap - 1 bytes kept, NUL-terminated); returns the bytes kept. */
static size_t read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    char tmp[4096];
    ssize_t r = read(fd, tmp, sizeof tmp);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    for (ssize_t i = 0; i < r && n + 1 < cap; i++)
      if (tmp[i] != '\n') buf[n++] = tmp[i];
  }
  buf[n] = 0;
  return n;
}

int main(int argc, char **argv) {
  setvbuf(stdout, 0, _IONBF, 0);
  static char buf[65536];
  if (argc == 5 && !strcmp(argv[1], "connect")) {
    int fd = dial((unsigned)strtoul(argv[2], 0, 0), (unsigned)strtoul(argv[3], 0, 0));
    if (fd < 0) return fail("connect");
    if (write_all(fd, argv[4], strlen(argv[4])) < 0) return fail("write");
    shutdown(fd, SHUT_WR);
    read_all(fd, buf, sizeof buf);
    printf("connect-reply=%s\n", buf);
    close(fd);
    return 0;
  }
  if (argc == 3 && !strcmp(argv[1], "listen")) {
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0) return fail("socket");
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
                            .svm_port = (unsigned)strtoul(argv[2], 0, 0)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) return fail("bind");
    if (listen(s, 1) < 0) return fail("listen");
    printf("listen-ready=%s\n", argv[2]);
    int fd = accept(s, 0, 0);
    if (fd < 0) return fail("accept");
    size_t n = 0;
    while (n + 1 < sizeof buf) {
      ssize_t r = read(fd, buf + n, 1);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0 || buf[n] == '\n') break;
      n++;
    }
    buf[n] = 0;
    printf("listen-got=%s\n", buf);
    char out[sizeof buf + 8];
    int len = snprintf(out, sizeof out, "echo:%s\n", buf);
    if (write_all(fd, out, (size_t)len) < 0) return fail("write");
    close(fd);
    close(s);
    return 0;
  }
  if (argc == 5 && !strcmp(argv[1], "bulk")) {
    int fd = dial((unsigned)strtoul(argv[2], 0, 0), (unsigned)strtoul(argv[3], 0, 0));
    if (fd < 0) return fail("connect");
    long total = strtol(argv[4], 0, 0);
    for (long off = 0; off < total;) {
      char chunk[8192];
      long k = total - off < (long)sizeof chunk ? total - off : (long)sizeof chunk;
      for (long i = 0; i < k; i++) chunk[i] = (char)((off + i) & 0xff);
      if (write_all(fd, chunk, (size_t)k) < 0) return fail("write");
      off += k;
    }
    shutdown(fd, SHUT_WR);
    read_all(fd, buf, sizeof buf);
    printf("bulk-reply=%s\n", buf);
    close(fd);
    return 0;
  }
  fprintf(stderr, "usage: vsockio connect CID PORT MSG | listen PORT | bulk CID PORT BYTES\n");
  return 2;
}
