import { z } from 'zod';
import { SECCOMP_DEFAULT, SECCOMP_MODES, type SeccompMode } from '../security/mode.js';

/** Sizes in YAML may be numbers of bytes or strings like '512M', '2G', '64K'. */
export const Size = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+\s*[KMGT]i?B?$|^\d+$/i, 'a size like 512M or 2G')])
  .transform((v) => parseSize(v));

/**
 * A size (a number of bytes, or '512M', '2GiB', '64K': binary multiples, case-insensitive) as bytes; throws a plain
 * Error on anything else (the Size schema checks the form first).
 */
export function parseSize(v: number | string): bigint {
  if (typeof v === 'number') return BigInt(v);
  const m = /^(\d+)\s*([KMGT]?)i?B?$/i.exec(v.trim());
  if (!m) throw new Error(`not a size: ${v}`);
  const mult = { '': 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n }[
    m[2].toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'
  ];
  return BigInt(m[1]) * mult;
}

/** The YAML `machine:` section: vCPU count (1..1024), guest memory in bytes, its backend, and what a reset does. */
export const MachineConfigSchema = z.strictObject({
  vcpus: z.number().int().min(1).max(1024).default(1).describe('number of vCPUs'),
  memory: Size.refine((b) => b > 0n && b % 4096n === 0n, 'guest memory must be a positive multiple of 4K')
    .default(256n * 1024n * 1024n)
    .describe("guest RAM: bytes, or a size like '512M', '2G' (default 256M)"),
  /** Allow more guest memory than the host's RAM + swap (see core/config/host-memory.ts). */
  overcommit: z.boolean().default(false).describe("allow more guest memory than the host's RAM + swap"),
  /** Guest memory backend. */
  memoryBackend: z
    .enum(['anonymous', 'file', 'memfd'])
    .default('anonymous')
    .describe('how guest RAM is allocated (file: memoryPath; memfd: shareable)'),
  /**
   * The 'file' backend's file, relative to the YAML file: created or grown when empty, never shrunk; a smaller
   * non-empty file is refused.
   */
  memoryPath: z.string().optional().describe("the 'file' backend's file, relative to the YAML file"),
  /**
   * The system call filters (core/security): every vCPU thread's (any runVm) and, under `vmm run`, the whole
   * process's. `vmm run --seccomp` overrides it. YAML may write true/false unquoted.
   */
  seccomp: z
    .union([z.boolean(), z.enum(SECCOMP_MODES as [SeccompMode, ...SeccompMode[]])])
    .transform((v): SeccompMode => (v === true ? 'true' : v === false ? 'false' : v))
    .default(SECCOMP_DEFAULT)
    .describe('system call filters: true (a call outside the list kills the VMM), log (only logged), false'),
  /** What a guest reset request does: end the VMM or restart the VM. */
  onReset: z.enum(['exit', 'restart']).default('exit').describe('what a guest reset does: end the VMM or boot again'),
  /**
   * After SIGTERM/SIGINT pressed the power button (machines that have one): how long the guest may take to shut
   * down before the VM is stopped hard (ms).
   */
  shutdownTimeoutMs: z
    .number()
    .int()
    .min(0)
    .max(3_600_000)
    .default(15_000)
    .describe('ms the guest may take to shut down after SIGTERM/SIGINT pressed its power button'),
});

/**
 * The YAML `boot:` section: kernel and initramfs paths (relative to the YAML file), the kernel command line, and the
 * boot protocol.
 */
export const BootConfigSchema = z.strictObject({
  kernel: z.string().describe('kernel (bzImage or ELF vmlinux), relative to the YAML file, or guestkit:vmlinux'),
  initramfs: z.string().optional().describe('initramfs, relative to the YAML file, or guestkit:initramfs'),
  cmdline: z.string().default('console=ttyS0').describe('kernel command line'),
  /** 'auto' picks bzImage or PVH (ELF vmlinux) from the file. */
  protocol: z.enum(['auto', 'bzimage', 'pvh']).default('auto').describe('boot protocol; auto picks it from the file'),
});

/**
 * One entry of the YAML `plugins:` list: which plugin (by name or by path), an instance id, and its config (left
 * unknown here: the plugin's own schema validates it).
 */
export const PluginEntrySchema = z
  .strictObject({
    /** A plugin discovered in plugins/ or node_modules, by manifest name. */
    name: z.string().optional().describe('a discovered plugin, by manifest name (vmm plugins lists them)'),
    /** Or an explicit path to a folder holding a manifest (relative to the YAML file). */
    path: z.string().optional().describe("or a plugin's folder, relative to the YAML file"),
    /** Instance name when the same plugin is listed more than once. */
    id: z.string().optional().describe('instance name (needed when one plugin is listed twice)'),
    config: z.unknown().optional().describe("the plugin's own config (vmm plugins NAME shows its keys)"),
  })
  .refine((p) => (p.name === undefined) !== (p.path === undefined), { message: 'give exactly one of name or path' });

/** A virtio transport's name as configs write it ('mmio', 'pci'): lower case letters, digits, '-'. */
export const VirtioTransportNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/, "a transport name like 'mmio' or 'pci'");

/** VM-wide virtio settings. */
export const VirtioVmConfigSchema = z.strictObject({
  /**
   * The transport virtio devices attach to unless their own config names one. Unset: the
   * VM's only transport (a VM with several must choose here or per device).
   */
  transport: VirtioTransportNameSchema.optional(),
});

/** The whole VM config file: `machine`, `boot`, `virtio` and `plugins` (unknown keys are refused). */
export const VmConfigSchema = z.strictObject({
  machine: MachineConfigSchema.prefault({}),
  boot: BootConfigSchema.optional(),
  virtio: VirtioVmConfigSchema.optional(),
  plugins: z.array(PluginEntrySchema).default([]),
});

/** A validated VM config, defaults filled in (sizes as bigint bytes). */
export type VmConfig = z.output<typeof VmConfigSchema>;
/** One validated `plugins:` entry. */
export type PluginEntry = z.output<typeof PluginEntrySchema>;
