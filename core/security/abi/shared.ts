/**
 * Calls the filter answers with ENOSYS on every host ABI, by one number everywhere (calls added since Linux 5.1 share
 * their numbers across architectures): clone3 (its flags sit in memory the filter cannot read; glibc then uses clone)
 * and io_uring (requests in a shared ring, out of the filter's sight).
 */
export const ENOSYS_SYSCALLS: Readonly<Record<string, number>> = {
  clone3: 435,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
};
