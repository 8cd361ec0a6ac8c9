/**
 * The kernel loader under fuzzing: one 32 MiB guest memory (a WatchedMemory over heap memory) reused
 * by every case, `loadLinux` run on the case's input, and the invariants checked: only X86BootError
 * escapes, nothing is touched outside guest RAM, work is bounded by the input, and a plan that comes
 * back keeps the kernel, the initramfs and the boot structures inside RAM and apart.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { watchedMemory } from '../../core/testing/watched-memory.js';
import { loadLinux, type BootInput, type BootPlan } from '../../plugins/x86/boot/loader.js';
import { X86BootError } from '../../plugins/x86/errors.js';
import { expectOnly, type Outcomes } from './support.js';

/** Guest RAM of the loader targets. */
export const LOADER_RAM = 32n << 20n;
const HIGH_MEMORY = 1n << 20n;

const shared = watchedMemory(testGuestMemory(LOADER_RAM));

/** Byte edits applied to an image: [offset, value] pairs (offsets wrap to the image length). */
export const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 12 });

/** Applies `list` to a copy of `image`, then keeps its first `keep` bytes (when given). */
export function mutate(image: Uint8Array, list: [number, number][], keep?: number): Uint8Array {
  const out = image.slice(0, keep === undefined ? image.length : Math.min(keep, image.length));
  if (out.length > 0) for (const [o, v] of list) out[o % out.length] = v;
  return out;
}

/** 32-bit field values a hostile header favours: edges, powers of two, and anything. */
export const u32Field = fc.oneof(
  fc.constantFrom(0, 1, 0xfff, 0x1000, 0x10_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_f000, 0xffff_ffff),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);

/** Runs the loader on `input` and checks the invariants; records the outcome (`loaded` or the error kind). */
export function loadAndCheck(input: BootInput, outcomes: Outcomes): void {
  const { mem, watch } = shared;
  watch.reset();
  let plan: BootPlan | undefined;
  const err = expectOnly([X86BootError], () => {
    plan = loadLinux(mem, input);
  });
  expect(watch.outside, 'accesses outside guest RAM').to.deep.equal([]);
  // Bounded work: one copy of each input plus the fixed boot structures (tables, page tables, zero page).
  const inputBytes = input.kernel.length + (input.initramfs?.length ?? 0);
  expect(watch.accesses, 'guest memory accesses').to.be.at.most(10_000);
  if (err) {
    outcomes.add((err as X86BootError).kind);
    return;
  }
  outcomes.add('loaded');
  const p = plan!;
  const inRam = (start: bigint, end: bigint) => start >= 0n && start <= end && end <= LOADER_RAM;
  expect(inRam(p.kernel.start, p.kernel.end), `kernel [${p.kernel.start}, ${p.kernel.end})`).to.equal(true);
  expect(p.kernel.start >= HIGH_MEMORY || p.kernel.start === -1n, 'kernel above 1 MiB').to.equal(true);
  expect(p.entry < 1n << 32n, 'entry is a 32-bit address').to.equal(true);
  if (p.initramfs) {
    const { address, size } = p.initramfs;
    expect(size).to.equal(BigInt(input.initramfs!.length));
    expect(address % 4096n).to.equal(0n);
    expect(inRam(address, address + size), 'initramfs inside RAM').to.equal(true);
    expect(address >= p.kernel.end, 'initramfs above the kernel').to.equal(true);
  }
  // Data written is what the input holds, nothing beyond a bounded amount of zeroed bss.
  expect(watch.bytes - inputBytes, 'bytes written besides the inputs').to.be.at.most(Number(LOADER_RAM));
}
