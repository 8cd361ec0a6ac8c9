/**
 * A full memory barrier (QEMU's smp_mb(), rust-vmm's fence(SeqCst)) for code that shares
 * guest RAM with vCPUs: every load and store before it is globally visible before any
 * load after it is performed.
 *
 * Why a virtqueue needs one: the device publishes something (used.idx, VRING_USED_F_NO_NOTIFY
 * cleared, avail_event) and then reads what the driver published (avail.idx, used_event,
 * VRING_AVAIL_F_NO_INTERRUPT); the driver does the mirror image, with its own smp_mb() in
 * between. x86 is TSO but still lets a load pass an earlier store to another address (the
 * store buffer), so without a fence on both sides each side can read the other's old value:
 * the device misses a buffer the driver added while the driver skips the kick (a stalled
 * queue), or the device skips an interrupt the driver asked for. TSO does NOT make this safe.
 *
 * Why this works from JavaScript: guest RAM is a koffi.view ArrayBuffer, not a
 * SharedArrayBuffer, so the ECMAScript memory model says nothing about how the VMM's
 * DataView accesses are seen by a vCPU (the guest is not a JS agent). What holds is the
 * machine code V8 emits, checked on this project's Node (v20.20.2, V8 11.3, x86-64) with
 * `node --print-opt-code` and `--print-builtin-code`:
 *  - an Atomics read-modify-write on a SharedArrayBuffer Int32Array is a `lock`ed
 *    instruction: the AtomicsAdd builtin the optimised code calls is a `lock cmpxchg` loop
 *    (an inlined form could only be another locked instruction: x86-64 has no other atomic
 *    read-modify-write). Intel SDM vol. 3A, "Memory Ordering in P6 and More Recent Processor
 *    Families": loads and stores are not reordered with locked instructions, which therefore
 *    act as a full fence for every memory access of the thread, whatever buffer it touches;
 *  - the compilers keep program order around it: the call (or the inlined atomic node) is
 *    on V8's effect chain with the DataView loads and stores and writes memory, so a store
 *    before it stays before it and a load after it is neither hoisted above it nor served
 *    from an earlier load (the optimised code of a store / Atomics.add / load sequence
 *    shows exactly that order).
 * The scratch word is private to this module; its value means nothing.
 * Other hosts: on arm64 V8's Atomics RMW is an acquire/release pair, which does not order a
 * plain store before a plain load; this VMM runs on x86-64 KVM only.
 */
const scratch = new Int32Array(new SharedArrayBuffer(4));

/** Orders all earlier memory accesses of this thread before all later ones (see the module comment). */
export function fullFence(): void {
  Atomics.add(scratch, 0, 0);
}

/** A fence function: fullFence in production, a recorder in tests. */
export type Fence = () => void;
