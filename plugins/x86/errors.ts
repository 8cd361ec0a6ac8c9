import { VmmError } from '../../core/errors.js';

/** Kinds of X86BootError: what was wrong with the boot input. */
export type X86BootErrorKind =
  /** The kernel image is shorter than its headers say, or its fields are inconsistent. */
  | 'TruncatedKernel'
  /** Neither an ELF64 x86_64 image nor a bzImage (no ELF magic, no "HdrS"). */
  | 'UnknownKernelFormat'
  /** A recognised format this loader cannot boot (old boot protocol, 32-bit only, wrong machine). */
  | 'UnsupportedKernel'
  /** An ELF vmlinux without XEN_ELFNOTE_PHYS32_ENTRY, when PVH was asked for. */
  | 'NoPvhEntry'
  /** A kernel segment or the kernel's working area leaves guest RAM. */
  | 'KernelOutOfMemory'
  | 'InitramfsTooLarge'
  | 'CmdlineTooLong'
  | 'InvalidCmdline'
  | 'MemoryTooSmall'
  /** Guest RAM regions that clash with the platform's fixed ranges. */
  | 'MemoryLayout'
  | 'TooManyVcpus'
  /** A saved machine state that does not fit this machine. */
  | 'State'
  /** Plugin settings that cannot work together with the plugins listed (x86 acpi without the acpi plugin). */
  | 'Config'
  | 'Io';

/** The one error class of the x86 machine: what was wrong with the boot input, plus the numbers involved. */
export class X86BootError extends VmmError<X86BootErrorKind> {}

/** `0x` and lower-case hex digits, for messages. */
export const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
