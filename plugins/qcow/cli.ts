import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import { checkImage, type CheckReport, type RepairMode } from './check.js';
import { rmSync } from 'node:fs';
import { convertImage, convertTempName } from './convert.js';
import { createQcow2 } from './create.js';
import { QcowError } from './errors.js';
import { imageInfo } from './info.js';
import { openQcow2 } from './open.js';

/** Parses "512", "64k", "1M", "10G" (binary units) into bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+)([kmgtp]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw new InvalidArgumentError(`not a size: ${s} (e.g. 512, 64k, 10G)`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 }[m[2]!.toLowerCase() as '' | 'k'];
  const v = Number(m[1]) * mult;
  if (!Number.isSafeInteger(v)) throw new InvalidArgumentError(`size too large: ${s}`);
  return v;
}

function parseChoice<T extends string>(values: readonly T[]) {
  return (s: string): T => {
    if (!(values as readonly string[]).includes(s))
      throw new InvalidArgumentError(`expected one of ${values.join(', ')}`);
    return s as T;
  };
}

function parseInt10(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`not an integer: ${s}`);
  return n;
}

/** qemu-img check's exit codes: 0 clean (or repaired), 2 corruptions, 3 leaks only. */
export function checkExitCode(r: CheckReport): number {
  if (r.corruptions - r.corruptionsFixed > 0) return 2;
  if (r.leaks - r.leaksFixed > 0) return 3;
  return 0;
}

function formatCheck(r: CheckReport): string {
  const lines = [...r.messages];
  const leaksLeft = r.leaks - r.leaksFixed;
  const corrLeft = r.corruptions - r.corruptionsFixed;
  if (r.leaksFixed + r.corruptionsFixed > 0)
    lines.push(
      `The following inconsistencies were found and repaired:\n\n    ${r.leaksFixed} leaked clusters\n    ${r.corruptionsFixed} corruptions\n`,
    );
  if (corrLeft > 0)
    lines.push(
      `${corrLeft} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.`,
    );
  if (leaksLeft > 0)
    lines.push(
      `${leaksLeft} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.`,
    );
  if (corrLeft === 0 && leaksLeft === 0) lines.push('No errors were found on the image.');
  lines.push(
    `${r.allocatedClusters}/${r.totalClusters} = ${r.totalClusters ? ((100 * r.allocatedClusters) / r.totalClusters).toFixed(2) : '0.00'}% allocated`,
  );
  lines.push(`Image end offset: ${r.imageEndOffset}`);
  return lines.join('\n');
}

const FORCE_SHARE_HELP =
  'open read-only even while another process (vmm, QEMU) writes the image; what is read may be inconsistent';

async function runAction(fn: () => Promise<number | void>): Promise<void> {
  try {
    const code = await fn();
    if (code) process.exitCode = code;
  } catch (e) {
    if (e instanceof QcowError) {
      process.stderr.write(`vmm image: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

/** Adds `image create|info|check|convert` to the vmm CLI (or to a fresh Command in tests). */
export function registerCommands(program: Command): void {
  const image =
    program.commands.find((c) => c.name() === 'image') ??
    program.command('image').description('create, inspect, check and convert disk images');

  image
    .command('create')
    .description('create a qcow2 image')
    .argument('<file>', 'image to create (must not exist)')
    .argument('[size]', 'virtual size, e.g. 10G (default: the backing file size)', parseSize)
    .option('--cluster-size <bytes>', 'cluster size, 512 to 2M', parseSize, 65536)
    .option('--refcount-bits <n>', 'refcount width: 1, 2, 4, 8, 16, 32 or 64', parseInt10, 16)
    .option('--compat <v>', 'v3 (qcow2 1.1) or v2 (0.10)', parseChoice(['v2', 'v3'] as const), 'v3')
    .option('-b, --backing <file>', 'backing file (name stored as given, relative to the image)')
    .option('-F, --backing-format <fmt>', 'backing file format', parseChoice(['qcow2', 'raw'] as const))
    .option('--lazy-refcounts', 'set the lazy refcounts compatible bit')
    .action(
      (
        file: string,
        size: number | undefined,
        o: {
          clusterSize: number;
          refcountBits: number;
          compat: 'v2' | 'v3';
          backing?: string;
          backingFormat?: 'qcow2' | 'raw';
          lazyRefcounts?: boolean;
        },
      ) =>
        runAction(async () => {
          let sz = size;
          if (sz === undefined) {
            if (!o.backing) throw new QcowError('Range', 'a size is needed when there is no backing file');
            const { dirname, resolve, isAbsolute } = await import('node:path');
            const path = isAbsolute(o.backing) ? o.backing : resolve(dirname(file), o.backing);
            if ((o.backingFormat ?? 'qcow2') === 'raw')
              sz = (await import('node:fs/promises').then((f) => f.stat(path))).size;
            else sz = (await imageInfo(path)).virtualSize;
          }
          await createQcow2({
            path: file,
            size: sz,
            clusterSize: o.clusterSize,
            refcountBits: o.refcountBits,
            version: o.compat === 'v2' ? 2 : 3,
            backingFile: o.backing,
            backingFormat: o.backingFormat,
            lazyRefcounts: o.lazyRefcounts,
          });
          process.stdout.write(
            `Formatting '${file}', fmt=qcow2 size=${sz} cluster_size=${o.clusterSize} refcount_bits=${o.refcountBits}\n`,
          );
        }),
    );

  image
    .command('info')
    .description('show a qcow2 image header (does not open backing files)')
    .argument('<file>')
    .option('--json', 'machine-readable output')
    .option('-U, --force-share', FORCE_SHARE_HELP)
    .action((file: string, o: { json?: boolean; forceShare?: boolean }) =>
      runAction(async () => {
        const i = await imageInfo(file, { forceShare: o.forceShare });
        if (o.json) process.stdout.write(JSON.stringify(i, null, 2) + '\n');
        else {
          const rows: Array<[string, unknown]> = [
            ['image', i.filename],
            ['file format', i.format],
            ['virtual size', i.virtualSize],
            ['disk size', i.actualSize],
            ['cluster_size', i.clusterSize],
            ['compat', i.version === 3 ? '1.1' : '0.10'],
            ['refcount bits', i.refcountBits],
            ['compression type', i.compressionType],
            ['lazy refcounts', i.lazyRefcounts],
            ['dirty', i.dirty],
            ['corrupt', i.corrupt],
            ['backing file', i.backingFile],
            ['backing file format', i.backingFormat],
            ['snapshots', i.snapshots],
          ];
          process.stdout.write(
            rows
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => `${k}: ${String(v)}`)
              .join('\n') + '\n',
          );
        }
      }),
    );

  image
    .command('check')
    .description('check refcounts against references (exit 0 clean, 2 corrupt, 3 leaks only)')
    .argument('<file>')
    .option(
      '-r, --repair <what>',
      'repair leaks, or all (also raises refcounts that are too low)',
      parseChoice(['leaks', 'all'] as const),
    )
    .option('--json', 'machine-readable output')
    .option('-U, --force-share', `${FORCE_SHARE_HELP}; not with --repair`)
    .action((file: string, o: { repair?: RepairMode; json?: boolean; forceShare?: boolean }) =>
      runAction(async () => {
        if (o.repair && o.forceShare)
          throw new QcowError(
            'Range',
            '--force-share cannot be combined with --repair (a repair needs the image to itself)',
          );
        const img = await openQcow2({
          path: file,
          readOnly: !o.repair,
          forCheck: true,
          skipBacking: true,
          forceShare: o.forceShare,
        });
        let r: CheckReport;
        try {
          r = await checkImage(img, { repair: o.repair });
        } finally {
          await img.close();
        }
        process.stdout.write((o.json ? JSON.stringify(r, null, 2) : formatCheck(r)) + '\n');
        return checkExitCode(r);
      }),
    );

  image
    .command('convert')
    .description(
      'copy a disk image (qcow2 or raw; with --backing its backing chain flattened) into a new file, atomically',
    )
    .argument('<src>')
    .argument('<dst>')
    .option('-f, --src-format <fmt>', 'source format (probed by default)', parseChoice(['qcow2', 'raw'] as const))
    .option('-O, --output-format <fmt>', 'output format', parseChoice(['qcow2', 'raw'] as const), 'qcow2')
    .option('-c, --compress', 'compress clusters (qcow2 output)')
    .option('--cluster-size <bytes>', 'output cluster size', parseSize)
    .option('--refcount-bits <n>', 'output refcount width', parseInt10)
    .option(
      '--backing',
      'follow a backing file named inside the source and copy its data too (off: such sources are refused)',
    )
    .option('-U, --force-share', FORCE_SHARE_HELP)
    .action(
      (
        src: string,
        dst: string,
        o: {
          srcFormat?: 'qcow2' | 'raw';
          outputFormat: 'qcow2' | 'raw';
          compress?: boolean;
          clusterSize?: number;
          refcountBits?: number;
          backing?: boolean;
          forceShare?: boolean;
        },
      ) =>
        runAction(async () => {
          const bar = process.stderr.isTTY
            ? new cliProgress.SingleBar(
                { stream: process.stderr, format: 'converting [{bar}] {percentage}% | {value}/{total} MiB' },
                cliProgress.Presets.shades_classic,
              )
            : undefined;
          let started = false;
          // SIGINT/SIGTERM: remove the half-written temporary file, then exit as the signal would.
          const onSignal = (sig: NodeJS.Signals): void => {
            rmSync(convertTempName(dst), { force: true });
            process.exit(sig === 'SIGINT' ? 130 : 143);
          };
          process.once('SIGINT', onSignal);
          process.once('SIGTERM', onSignal);
          try {
            await convertImage({
              src,
              dst,
              srcFormat: o.srcFormat,
              dstFormat: o.outputFormat,
              compress: o.compress,
              clusterSize: o.clusterSize,
              refcountBits: o.refcountBits,
              allowBacking: o.backing ?? false,
              forceShare: o.forceShare,
              onProgress:
                bar &&
                ((done, total) => {
                  if (!started) {
                    bar.start(Math.ceil(total / 2 ** 20), 0);
                    started = true;
                  }
                  bar.update(Math.ceil(done / 2 ** 20));
                }),
            });
          } finally {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
            if (started) bar?.stop();
          }
        }),
    );
}
