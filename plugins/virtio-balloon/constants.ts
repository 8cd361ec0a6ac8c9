/** virtio-balloon feature bits (virtio 1.2 §5.5.3). */
export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 1n << 0n;
/** A statistics queue exists (§5.5.6.3). */
export const VIRTIO_BALLOON_F_STATS_VQ = 1n << 1n;
/** The driver deflates the balloon when the guest runs out of memory. */
export const VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 1n << 2n;
/** A free page reporting queue exists (§5.5.6.5). */
export const VIRTIO_BALLOON_F_REPORTING = 1n << 5n;

/** The balloon's unit: PFNs in the inflate and deflate queues are 4 KiB page numbers, whatever the guest page size. */
export const BALLOON_PAGE = 4096;
/** Bytes of config space (§5.5.4): num_pages, actual, free_page_hint_cmd_id, poison_val. */
export const BALLOON_CONFIG_SIZE = 16;
/** Config space offsets. */
export const Cfg = { numPages: 0, actual: 4 } as const;

/** Statistics tags (§5.5.6.3) and the names this device reports them under. */
export const STAT_NAMES: Readonly<Record<number, string>> = {
  0: 'swapIn',
  1: 'swapOut',
  2: 'majorFaults',
  3: 'minorFaults',
  4: 'freeMemory',
  5: 'totalMemory',
  6: 'availableMemory',
  7: 'diskCaches',
  8: 'hugetlbAllocations',
  9: 'hugetlbFailures',
};
/** Bytes of one statistics entry: le16 tag, le64 value. */
export const STAT_ENTRY_SIZE = 10;
/** At most this many entries are read from one statistics buffer (a hostile driver may offer 4 GiB). */
export const MAX_STAT_ENTRIES = 64;
/** At most this many PFNs are taken from one inflate/deflate chain (Linux sends up to 256). */
export const MAX_PFNS_PER_CHAIN = 1 << 16;
/** Chains served per wake-up before yielding to the event loop. */
export const CHAINS_PER_TURN = 256;
