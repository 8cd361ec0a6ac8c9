/**
 * The shared-memory protocol between the main thread and one vCPU worker.
 * `ctrl` is an Int32Array over a SharedArrayBuffer:
 *   STATE  worker -> main mailbox: IDLE, REQUEST (an exit waits for the main thread), RESPONSE (answered)
 *   CMD    main -> worker: RUN, PAUSE, STOP (the worker checks it after every exit)
 *   EXIT   what REQUEST carries: a KVM exit reason, or PAUSED / FAILED below
 *   ACTION the main thread's answer: CONTINUE or STOP_VCPU
 *   ERRNO  errno of a failed KVM_RUN (with EXIT = FAILED)
 *   MP_STATE, IF, RIP_LO, RIP_HI  answer to a QUERY command: KVM mp_state, RFLAGS.IF and RIP
 *   QDONE  1 when MP_STATE/IF hold an answer the main thread has not taken: the worker answers a
 *          QUERY without waiting (it resets CMD to RUN itself, sets QDONE, wakes the main thread
 *          and re-enters the guest), so the halt watch's polling costs a kick, not a hop
 *   WAKES  main -> worker: bumped by every resume and stop; a paused worker sleeps on it, so a resume that was
 *          followed by the next pause before the worker woke is still seen (it then says PAUSED again)
 * The kvm_run page itself is shared too (both threads map it), so the main thread
 * reads the exit's details and writes IN/MMIO-read data there: no copying.
 */
export const CTRL = {
  STATE: 0,
  CMD: 1,
  EXIT: 2,
  ACTION: 3,
  ERRNO: 4,
  MP_STATE: 5,
  IF: 6,
  QDONE: 7,
  RIP_LO: 8,
  RIP_HI: 9,
  WAKES: 10,
} as const;
/** Int32 words in a worker's `ctrl` buffer (one per CTRL index). */
export const CTRL_WORDS = 11;
/** RIP as the QUERY answer carries it (two int32 words). */
export const ripFromWords = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
/** Values of ctrl[STATE], the worker -> main mailbox (see the file comment). */
export const STATE = { IDLE: 0, REQUEST: 1, RESPONSE: 2 } as const;
/** Values of ctrl[CMD], the main thread's command to a worker. */
export const CMD = { RUN: 0, PAUSE: 1, STOP: 2, QUERY: 3 } as const;
/**
 * Values of ctrl[EXIT] that are not KVM exit reasons: the worker paused, KVM_RUN failed (errno in ctrl[ERRNO]), or a
 * QUERY answer is ready.
 */
export const POST = { PAUSED: 0x10000, FAILED: 0x10001, STATE: 0x10002 } as const;
/** Values of ctrl[ACTION], the main thread's answer to an exit. */
export const ACTION = { CONTINUE: 0, STOP_VCPU: 1 } as const;

/** Exit kinds counted by the stats block (index = position). */
export const STAT_KINDS = [
  'io',
  'mmio',
  'hlt',
  'shutdown',
  'intr',
  'system-event',
  'internal-error',
  'fail-entry',
  'debug',
  'unknown',
  /**
   * PIO exits completed on the worker (./fast-path.ts), no hop: a write queued in the TX ring, a read answered from the
   * table, a write dropped.
   */
  'pio-fast-ring',
  'pio-fast-read',
  'pio-fast-drop',
  /**
   * MMIO exits completed on the worker (./fast-path-mmio.ts): a published 4-byte read answered, a 4-byte write queued.
   */
  'mmio-fast-read',
  'mmio-fast-ring',
] as const;
/** One STAT_KINDS name. */
export type StatKind = (typeof STAT_KINDS)[number];

/** What the main thread sends a worker at start (structured-cloned). */
export interface WorkerInit {
  index: number;
  vcpuFd: number;
  mmapSize: number;
  /** -1: notify the main thread through Atomics only (waitAsync mode). */
  eventFd: number;
  ctrl: SharedArrayBuffer;
  tid: SharedArrayBuffer;
  /** Float64Array [count, totalNs] per STAT_KINDS entry, plus [guestNs] at the end. */
  stats: SharedArrayBuffer;
  /** The encoded seccomp filter this thread installs before its first KVM_RUN (WorkerRunnerOptions.seccompFilter). */
  seccompFilter?: Uint8Array;
  /** Worker fast paths (./fast-path.ts): the runner's port table and this vCPU's TX ring; absent when turned off. */
  fastPath?: {
    table: SharedArrayBuffer;
    ring: SharedArrayBuffer;
    otherRings: SharedArrayBuffer[];
    mmio?: SharedArrayBuffer;
  };
}

/** Size in bytes of a worker's stats buffer: [count, totalNs] per STAT_KINDS entry and guestNs, as Float64. */
export const statsBytes = (): number => (STAT_KINDS.length * 2 + 1) * 8;
