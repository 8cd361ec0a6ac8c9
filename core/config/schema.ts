import { z } from 'zod';

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
  vcpus: z.number().int().min(1).max(1024).default(1),
  memory: Size.default(256n * 1024n * 1024n),
  /** Allow more guest memory than the host's RAM + swap (see core/config/host-memory.ts). */
  overcommit: z.boolean().default(false),
  /** Guest memory backend. */
  memoryBackend: z.enum(['anonymous', 'file', 'memfd']).default('anonymous'),
  /**
   * The 'file' backend's file, relative to the YAML file: created or grown when empty, never shrunk; a smaller
   * non-empty file is refused.
   */
  memoryPath: z.string().optional(),
  /** What a guest reset request does: end the VMM or restart the VM. */
  onReset: z.enum(['exit', 'restart']).default('exit'),
});

/**
 * The YAML `boot:` section: kernel and initramfs paths (relative to the YAML file), the kernel command line, and the
 * boot protocol.
 */
export const BootConfigSchema = z.strictObject({
  kernel: z.string(),
  initramfs: z.string().optional(),
  cmdline: z.string().default('console=ttyS0'),
  /** 'auto' picks bzImage or PVH (ELF vmlinux) from the file. */
  protocol: z.enum(['auto', 'bzimage', 'pvh']).default('auto'),
});

/**
 * One entry of the YAML `plugins:` list: which plugin (by name or by path), an instance id, and its config (left
 * unknown here: the plugin's own schema validates it).
 */
export const PluginEntrySchema = z
  .strictObject({
    /** A plugin discovered in plugins/ or node_modules, by manifest name. */
    name: z.string().optional(),
    /** Or an explicit path to a folder holding a manifest (relative to the YAML file). */
    path: z.string().optional(),
    /** Instance name when the same plugin is listed more than once. */
    id: z.string().optional(),
    config: z.unknown().optional(),
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
