import type { GuestAddress, GuestRange } from '../address.js';

/** One contiguous block of guest-physical memory backed by host memory. */
export interface GuestMemoryRegion {
  readonly range: GuestRange;
  /**
   * Host virtual address of the first byte (what KVM_SET_USER_MEMORY_REGION needs). 0n for the in-process test
   * backend.
   */
  readonly hostAddress: bigint;
  /** Zero-copy view of the whole region; valid until the memory is closed. */
  readonly bytes: Uint8Array;
  /** Where the bytes live, for snapshots, migration and vhost-user style sharing. */
  readonly backing:
    | { kind: 'anonymous' }
    | { kind: 'file'; path: string; fd: number; offset: bigint }
    | { kind: 'memfd'; fd: number; offset: bigint }
    | { kind: 'heap' };
  readonly readOnly: boolean;
}

/** What a zero-copy view will be used for; 'write' views are refused over read-only regions. */
export type MemoryAccess = 'read' | 'write';

/** The width of one little-endian field of a Layout: 1, 2, 4 or 8 bytes (u64 fields read as bigint). */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u64';
/**
 * A fixed layout of little-endian fields (a guest structure such as a virtio ring header), read or written in
 * one call with readLayout/writeLayout: field name -> byte offset from the structure's start and width.
 */
export type Layout = Readonly<Record<string, { offset: number; type: FieldType }>>;
/** The values of a Layout's fields by name: bigint for u64 fields, number for the others. */
export type LayoutValues<L extends Layout> = { [K in keyof L]: L[K]['type'] extends 'u64' ? bigint : number };

/**
 * Guest memory as its consumers (devices, loaders, the hypervisor backend) need it.
 * Every access is bounds-checked: an address or length that leaves guest memory, or
 * crosses from one region into a hole, throws a GuestMemoryError and touches nothing.
 * Integers are little-endian.
 */
export interface GuestMemory {
  readonly regions: readonly GuestMemoryRegion[];
  /** Total bytes of guest RAM. */
  readonly size: bigint;
  /**
   * True while VMM writes are observed through these methods (live migration's dirty tracker): a device that keeps
   * its own writable views of `regions` must write through the methods (slice/slices/write) meanwhile.
   */
  writesObserved?: boolean;

  findRegion(addr: GuestAddress): GuestMemoryRegion | undefined;
  /** True when [addr, addr+length) lies in guest memory (may span adjacent regions). */
  isValidRange(addr: GuestAddress, length: number | bigint): boolean;

  /** Copies out `length` bytes. */
  read(addr: GuestAddress, length: number): Uint8Array;
  /** Copies `length` bytes into `into` (at `into` offset 0). */
  readInto(addr: GuestAddress, into: Uint8Array): void;
  write(addr: GuestAddress, data: Uint8Array): void;
  fill(addr: GuestAddress, length: number, value: number): void;

  /**
   * A zero-copy view; the range must lie within one region. Valid until close().
   * `access: 'write'` when the caller (a device) will write through it: read-only memory is then refused.
   */
  slice(addr: GuestAddress, length: number, access?: MemoryAccess): Uint8Array;
  /** Zero-copy views covering a range that may span several adjacent regions (`access` as for slice). */
  slices(addr: GuestAddress, length: number, access?: MemoryAccess): Uint8Array[];
  /**
   * Optional fast path of slice() for a device's hot path, with the address as a plain number (no GuestAddress, no
   * bigint): the view when `addr` and `length` are safe integers, length > 0, and [addr, addr + length) lies in one
   * region (writable for access 'write'); otherwise undefined, and the caller goes through slice()/slices(), which
   * explain the refusal. A wrapper that observes writes (live migration) observes this one too.
   */
  sliceAt?(addr: number, length: number, access?: MemoryAccess): Uint8Array | undefined;

  readU8(addr: GuestAddress): number;
  readU16(addr: GuestAddress): number;
  readU32(addr: GuestAddress): number;
  readU64(addr: GuestAddress): bigint;
  writeU8(addr: GuestAddress, v: number): void;
  writeU16(addr: GuestAddress, v: number): void;
  writeU32(addr: GuestAddress, v: number): void;
  writeU64(addr: GuestAddress, v: bigint): void;

  readLayout<L extends Layout>(addr: GuestAddress, layout: L, size: number): LayoutValues<L>;
  writeLayout<L extends Layout>(addr: GuestAddress, layout: L, size: number, values: Partial<LayoutValues<L>>): void;

  /** Reads `length` bytes of the file at `fd` (at `position`) into guest memory; returns bytes read. */
  readFromFile(fd: number, addr: GuestAddress, length: number, position: bigint | number): number;
  /** Writes `length` bytes of guest memory to the file at `fd` (at `position`); returns bytes written. */
  writeToFile(fd: number, addr: GuestAddress, length: number, position: bigint | number): number;

  /** Unmaps the memory; later accesses throw. */
  close(): void;
}

/** Describes memory to create; picked up by a GuestMemoryFactory backend. */
export interface GuestMemoryLayout {
  regions: { start: bigint; size: bigint }[];
  backend: 'anonymous' | 'file' | 'memfd' | 'heap';
  /** For backend 'file': path of the shared file backing guest RAM. */
  path?: string;
  hugePages?: boolean;
}

/**
 * Creates guest memory for a layout (the GuestMemoryFactory token; BackendGuestMemoryFactory picks the backend the
 * layout names). The caller owns the result and closes it when the VM ends.
 */
export interface GuestMemoryFactory {
  create(layout: GuestMemoryLayout): GuestMemory;
}
