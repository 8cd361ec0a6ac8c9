/**
 * The attacks of the hostile-guest program (hosts/guestkit/tools/hostile.c, `hostile blk`) on a virtio-blk
 * device, and what the VMM must answer to each. The unit test (blk-attacks.test.ts) replays every attack
 * against the real transport and device; the linux test (hostile.linux.test.ts) reads the same outcomes
 * from the program's output inside a real guest.
 *
 * Outcomes as the program prints them: `needs-reset` (DEVICE_NEEDS_RESET in Status), `used:<status byte>`
 * (the request completed: 0 OK, 1 IOERR, 2 UNSUPP), `refused` (a set-up attack: DRIVER_OK did not stick).
 */

/** What the device must do with one attack (a request refused or dropped, or a set-up refused). */
export type BlkOutcome = 'needs-reset' | 'refused' | 'used:0' | 'used:1' | 'used:2';

/** Attack name (blk-<name> in the program's output) -> the outcome the VMM must give, in the program's order. */
export const BLK_ATTACKS: Readonly<Record<string, BlkOutcome>> = {
  loop: 'needs-reset', // descriptor 2 -> 1 -> 2 ...
  'past-ram': 'needs-reset', // a data buffer at 256 GiB
  'own-mmio': 'needs-reset', // a data buffer on the device's own registers
  lapic: 'needs-reset', // a data buffer on the local APIC page (an MMIO hole)
  'len-4g': 'needs-reset', // a data buffer of 0xfffff000 bytes
  'len-wrap': 'needs-reset', // address + length wraps around 2^64
  'head-range': 'needs-reset', // avail ring entry 999 in a queue of 16
  'next-range': 'needs-reset', // next = 4000
  'avail-jump': 'needs-reset', // avail.idx 1000 ahead
  'ind-nested': 'needs-reset', // an indirect descriptor inside an indirect table
  'ind-odd': 'needs-reset', // an indirect table of 47 bytes
  'ind-huge': 'needs-reset', // an indirect table of 131072 entries
  'ind-loop': 'needs-reset', // a loop inside an indirect table
  'ind-next': 'needs-reset', // INDIRECT together with NEXT
  'ind-past-ram': 'needs-reset', // an indirect table at 256 GiB
  'sector-end': 'used:1', // a read at sector 2^60: IOERR, the device goes on
  'bad-type': 'used:2', // request type 0x7777: UNSUPP
  'short-hdr': 'used:1', // a 7-byte header: IOERR
  'write-then-read': 'needs-reset', // a device-readable buffer after a device-writable one
  'no-status': 'used:1', // no status descriptor: the data buffer's last byte carries the status
  'size-3': 'needs-reset', // QueueNum 3 (not a power of two) at DRIVER_OK
  'size-huge': 'needs-reset', // QueueNum 65536 at DRIVER_OK
  'ring-past-ram': 'needs-reset', // the descriptor table at 256 GiB
  'ring-mmio': 'needs-reset', // the descriptor table on the device's own registers
  'feat-all': 'refused', // every feature bit acknowledged, offered or not: FEATURES_OK does not stick
  'ok-no-feat': 'refused', // DRIVER_OK without FEATURES_OK: not accepted
  relayout: 'used:0', // QueueReady/QueueNum/addresses written after DRIVER_OK: ignored, the queue goes on
  storm: 'used:0', // 5000 kicks with nothing new, 500 kicks of a queue that does not exist, then a read
};

/** Physical addresses the program uses as bad buffers. */
export const PAST_RAM = 0x40_0000_0000n;
/** The local APIC page: an MMIO hole no buffer may point into. */
export const LAPIC = 0xfee0_0000n;
