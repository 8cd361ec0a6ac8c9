/*
 * Peer for the exit round-trip benchmark: the same guest and the same KVM_RUN cycle as
 * test/bench/exit/ours.ts, in plain C against <linux/kvm.h>. Compiled at bench time.
 * The guest runs in 64-bit user mode (CPL3, IOPL=3: native under PVM) doing
 *   mov edx, 0x80; l: out dx, al; jmp l
 * Each KVM_RUN returns with KVM_EXIT_IO; the loop checks the port and counts.
 * Usage: kvm-exit-loop <exits> <rounds>   prints one line per round: "ns_per_exit <value>"
 * Layout (same as plugins/kvm/testing.ts LONG_MODE_LAYOUT): GDT 0x1000, PML4 0x2000,
 * PDPT 0x3000, PD 0x4000, TSS 0x5000, stack 0x7000, code 0x8000.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM (4u << 20)
static void die(const char *what) { perror(what); exit(2); }

static struct kvm_segment seg(uint16_t sel, uint8_t type, uint8_t dpl, uint8_t l, uint8_t db) {
  struct kvm_segment s = { .base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
    .dpl = dpl, .db = db, .s = 1, .l = l, .g = 1 };
  return s;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 20000, rounds = argc > 2 ? atol(argv[2]) : 1;
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  uint8_t *mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = MEM, .userspace_addr = (uint64_t)mem };
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("KVM_SET_USER_MEMORY_REGION");
  uint64_t *gdt = (uint64_t *)(mem + 0x1000);
  gdt[0] = 0; gdt[1] = 0x00af9b000000ffffull; gdt[2] = 0x00cf93000000ffffull;
  gdt[3] = 0x00affb000000ffffull; gdt[4] = 0x00cff3000000ffffull;
  gdt[5] = 0x0000890000000067ull | ((0x5000ull & 0xffffff) << 16); gdt[6] = 0;
  *(uint64_t *)(mem + 0x2000) = 0x3000 | 7;
  *(uint64_t *)(mem + 0x3000) = 0x4000 | 7;
  for (uint64_t i = 0; i < 512; i++) ((uint64_t *)(mem + 0x4000))[i] = (i << 21) | 0x87;
  static const uint8_t code[] = { 0xba, 0x80, 0, 0, 0, 0xee, 0xeb, 0xfd };
  memcpy(mem + 0x8000, code, sizeof code);

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");
  struct kvm_sregs s;
  if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
  s.cs = seg(0x1b, 0xb, 3, 1, 0);
  s.ds = s.es = s.fs = s.gs = s.ss = seg(0x23, 0x3, 3, 0, 1);
  struct kvm_segment tr = { .base = 0x5000, .limit = 0x67, .selector = 0x28, .type = 0xb, .present = 1 };
  struct kvm_segment ldt = { .type = 2, .unusable = 1 };
  s.tr = tr; s.ldt = ldt;
  s.gdt.base = 0x1000; s.gdt.limit = 7 * 8 - 1;
  s.idt.base = 0; s.idt.limit = 0;
  s.cr0 = 0x80050033; s.cr3 = 0x2000; s.cr4 = 0x620; s.efer = 0x500;
  if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
  struct kvm_regs regs = { .rip = 0x8000, .rsp = 0x7000, .rflags = 0x3002 };
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

  for (int i = 0; i < 200; i++) if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN (warm-up)");
  for (long k = 0; k < rounds; k++) {
    struct timespec a, b;
    long seen = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
      if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
      if (run->exit_reason != KVM_EXIT_IO) { fprintf(stderr, "unexpected exit reason %u\n", run->exit_reason); return 3; }
      if (run->io.port == 0x80 && run->io.direction == KVM_EXIT_IO_OUT) seen++;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (seen != n) { fprintf(stderr, "saw %ld port writes, expected %ld\n", seen, n); return 3; }
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    printf("ns_per_exit %.1f\n", ns / (double)n);
    fflush(stdout);
  }
  return 0;
}
