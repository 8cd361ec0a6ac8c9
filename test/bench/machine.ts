import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { detectHost } from '../../hosts/sandbox/detect.js';
import type { MachineInfo } from './types.js';

const firstLine = (cmd: string, args: string[]): string | undefined => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.split('\n')[0].trim() || undefined : undefined;
};

/** The machine and the peers' versions, recorded with the figures. */
export function machineInfo(): MachineInfo {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel;
  } catch {
    /* keep os.cpus() */
  }
  const host = detectHost();
  return {
    cpuModel,
    cpus: cpus().length,
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    kernel: release(),
    hostKvm: host.kind + (host.module ? ` (${host.module})` : ''),
    inSandbox: host.inSandbox,
    node: process.version,
    qemu: firstLine('qemu-system-x86_64', ['--version']),
    gcc: firstLine('gcc', ['--version']),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
