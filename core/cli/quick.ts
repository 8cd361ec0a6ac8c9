import * as path from 'node:path';

/** The flags of the quick form of `vmm run` / `vmm validate` (no config file). */
export interface QuickOptions {
  kernel?: string;
  initramfs?: string;
  cmdline?: string;
  cpus?: string;
  memory?: string;
  disk?: string[];
  net?: string[];
}

/** A user mistake in the quick form's flags (the CLI prints it as one line, exit 2). */
export class QuickFormError extends Error {}

/** The micro host's command line (hosts/micro.yaml), used when `--cmdline` is not given. */
export const QUICK_CMDLINE =
  'console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd';

/**
 * The micro host's plugin list (hosts/micro.yaml; a test keeps the two equal): what the quick form builds on.
 */
export const QUICK_PLUGINS: readonly Record<string, unknown>[] = [
  { name: 'kvm' },
  { name: 'acpi' },
  { name: 'x86' },
  { name: 'serial', config: { port: 'COM1', console: { kind: 'stdio' } } },
  { name: 'i8042' },
  { name: 'rtc' },
  { name: 'boot-timer' },
  { name: 'virtio-mmio' },
];

/** Whether any quick-form flag was given. */
export const isQuickForm = (o: QuickOptions): boolean =>
  [o.kernel, o.initramfs, o.cmdline, o.cpus, o.memory].some((v) => v !== undefined) ||
  (o.disk?.length ?? 0) > 0 ||
  (o.net?.length ?? 0) > 0;

/** `a=1,b,c=x` as [key, value] pairs in order; a bare word has value undefined. */
function pairs(flag: string, spec: string): [string, string | undefined][] {
  if (spec.trim() === '') throw new QuickFormError(`${flag}: empty value`);
  return spec.split(',').map((part) => {
    const i = part.indexOf('=');
    return i < 0 ? [part.trim(), undefined] : [part.slice(0, i).trim(), part.slice(i + 1)];
  });
}

/** A path as the user typed it, made absolute against `cwd` (a `<scheme>:<name>` host file is kept). */
const pathArg = (p: string, cwd: string): string =>
  /^[a-z][a-z0-9+.-]*:/.test(p) && !path.isAbsolute(p) ? p : path.resolve(cwd, p);

/** `--disk path=F[,readonly][,format=raw|qcow2|auto][,id=NAME]` as a virtio-blk plugin entry. */
export function diskEntry(spec: string, index: number, cwd: string): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  let id = `disk${index}`;
  for (const [k, v] of pairs('--disk', spec)) {
    if (k === 'path' && v) config.path = pathArg(v, cwd);
    else if ((k === 'readonly' || k === 'ro') && (v === undefined || v === 'on' || v === 'true'))
      config.readOnly = true;
    else if (k === 'format' && v) config.format = v;
    else if (k === 'id' && v) id = v;
    else
      throw new QuickFormError(
        `--disk ${spec}: unknown '${k}' (path=FILE[,readonly][,format=raw|qcow2|auto][,id=NAME])`,
      );
  }
  if (config.path === undefined) throw new QuickFormError(`--disk ${spec}: give path=FILE`);
  return { name: 'virtio-blk', id, config };
}

/** `--net tap=NAME[,mac=MAC][,id=NAME]` as a virtio-net plugin entry. */
export function netEntry(spec: string, index: number): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  let id = `net${index}`;
  for (const [k, v] of pairs('--net', spec)) {
    if (k === 'tap' && v) config.backend = { kind: 'tap', name: v };
    else if (k === 'mac' && v) config.mac = v;
    else if (k === 'id' && v) id = v;
    else throw new QuickFormError(`--net ${spec}: unknown '${k}' (tap=NAME[,mac=MAC][,id=NAME])`);
  }
  if (config.backend === undefined) throw new QuickFormError(`--net ${spec}: give tap=NAME`);
  return { name: 'virtio-net', id, config };
}

/** `--cpus` as a number when it is a whole number (else as given, for the schema to refuse with a position). */
const count = (v: string): number | string => (/^\d+$/.test(v) ? Number(v) : v);

/**
 * The VM config the quick form's flags describe: the micro host (hosts/micro.yaml) with this kernel, initramfs,
 * command line, vCPUs, memory, disks (virtio-blk over raw-disk, and qcow for qcow2/auto) and tap networks. Paths
 * are made absolute against `cwd`, so the config means the same wherever it is written.
 */
export function quickConfig(o: QuickOptions, cwd = process.cwd()): Record<string, unknown> {
  if (o.kernel === undefined) throw new QuickFormError('the quick form needs --kernel FILE (or give a config file)');
  const machine: Record<string, unknown> = { vcpus: count(o.cpus ?? '1'), memory: o.memory ?? '256M' };
  const boot: Record<string, unknown> = { kernel: pathArg(o.kernel, cwd) };
  if (o.initramfs !== undefined) boot.initramfs = pathArg(o.initramfs, cwd);
  boot.cmdline = o.cmdline ?? QUICK_CMDLINE;
  const disks = (o.disk ?? []).map((d, i) => diskEntry(d, i, cwd));
  const nets = (o.net ?? []).map((n, i) => netEntry(n, i));
  const plugins = QUICK_PLUGINS.map((p) => structuredClone(p));
  if (disks.length) {
    plugins.push({ name: 'raw-disk' });
    const formats = disks.map((d) => (d.config as { format?: string }).format);
    if (formats.some((f) => f === 'qcow2' || f === 'auto')) plugins.push({ name: 'qcow' });
  }
  plugins.push(...disks, ...nets);
  return { machine, boot, plugins };
}
