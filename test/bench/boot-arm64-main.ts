/**
 * Inside the arm64 L1 (started by boot-arm64.ts as `node dist/test/bench/boot-arm64-main.js <dir> <repeats>`):
 * per repeat, QEMU `-M virt` with KVM boots the guest, then ours does; prints one `BENCH-ARM64 <json>` line
 * (Arm64BootFigures) for the host.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runGuest } from './guest/run-guest.js';
import { ARM64_BOOT, qemuArm64Argv, type Arm64BootFigures } from './boot-arm64-args.js';

const [dir = '/tsvmm', repeats = '3'] = process.argv.slice(2);
const kernel = join(dir, 'kit', 'Image');
const initramfs = join(dir, 'l2-bench.cpio.gz');
const yaml = join(dir, 'bench.yaml');
writeFileSync(
  yaml,
  stringify({
    machine: { vcpus: ARM64_BOOT.vcpus, memory: `${ARM64_BOOT.memoryMiB}M` },
    boot: { kernel, initramfs, cmdline: `console=ttyS0 ${ARM64_BOOT.cmdline}` },
    plugins: [
      { name: 'kvm' },
      { name: 'arm64' },
      { name: 'serial', config: { port: 'COM1', mmio: 0x0900_0000, console: { kind: 'stdio' } } },
    ],
  }),
);
const qemuEnv = { ...process.env, LD_LIBRARY_PATH: ARM64_BOOT.qemuLibs.join(':') };
const f: Arm64BootFigures = { ours: [], qemu: [], problems: [] };
for (let i = 0; i < Number(repeats); i++) {
  for (const which of ['qemu', 'ours'] as const) {
    const argv = which === 'qemu' ? qemuArm64Argv(kernel, initramfs) : [process.execPath, 'bin/vmm.js', 'run', yaml]; // as users run it: the seccomp filters on (the default)
    const r = await runGuest(argv, { env: which === 'qemu' ? qemuEnv : process.env, timeoutMs: 150_000 });
    if (r.l.initMs === undefined) f.problems.push(`${which} ${i + 1}: ${r.problem}: ${r.l.console.slice(-300)}`);
    else f[which][i] = r.l.initMs;
    process.stdout.write(`bench: arm64 boot ${which} ${i + 1}: ${r.l.initMs?.toFixed(0) ?? 'n/a'} ms\n`);
  }
}
process.stdout.write(`BENCH-ARM64 ${JSON.stringify(f)}\n`);
process.exit(0);
