/**
 * What kind of KVM this host has, and why an unmodified Linux guest may not boot on it (PVM, none): the kvm
 * plugin's host check (`vmm run` refuses before anything starts and points at `--sandbox`); hosts/sandbox
 * and the test runner read it too.
 */
import { existsSync, readFileSync } from 'node:fs';

/** What kind of KVM this host has, which decides whether Linux guests can boot here or only in the sandbox. */
export type KvmHostKind =
  /** Hardware virtualization (VT-x/AMD-V) with kvm_intel/kvm_amd: unmodified Linux guests run. */
  | 'hardware'
  /** KVM backed by PVM (kvm_pvm): guest kernel mode is emulated; Linux guests do not boot. */
  | 'pvm'
  /** /dev/kvm exists but the backend is unknown. */
  | 'unknown'
  /** No /dev/kvm. */
  | 'none';

/** What detectHost found out about this host's KVM (and whether we run inside the sandbox's L1). */
export interface HostInfo {
  kind: KvmHostKind;
  devKvm: boolean;
  /** vmx/svm flag in /proc/cpuinfo. */
  cpuFlag?: 'vmx' | 'svm';
  /** The KVM vendor module loaded: kvm_intel, kvm_amd or kvm_pvm. */
  module?: string;
  /** Linux guests can boot on this host's KVM: run the linux tier directly. */
  canBootLinux: boolean;
  /** We are inside the sandbox's L1 (set by its init). */
  inSandbox: boolean;
}

/**
 * Where detectHost reads from: file existence, file contents ('' when unreadable) and the environment; tests pass
 * fakes.
 */
export interface DetectSources {
  exists: (p: string) => boolean;
  read: (p: string) => string;
  env: NodeJS.ProcessEnv;
}

const realSources: DetectSources = {
  exists: existsSync,
  read: (p) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  },
  env: process.env,
};

/** Finds what kind of KVM this host has (sources injectable for tests). */
export function detectHost(src: DetectSources = realSources): HostInfo {
  const devKvm = src.exists('/dev/kvm');
  const flags = /^flags\s*:(.*)$/m.exec(src.read('/proc/cpuinfo'))?.[1].split(/\s+/) ?? [];
  const cpuFlag = flags.includes('vmx') ? 'vmx' : flags.includes('svm') ? 'svm' : undefined;
  const module = ['kvm_pvm', 'kvm_intel', 'kvm_amd'].find((m) => src.exists(`/sys/module/${m}`));
  const inSandbox = src.env.TSVMM_IN_SANDBOX === '1';
  let kind: KvmHostKind;
  if (!devKvm) kind = 'none';
  else if (module === 'kvm_pvm') kind = 'pvm';
  else if (cpuFlag && (module === 'kvm_intel' || module === 'kvm_amd')) kind = 'hardware';
  else kind = 'unknown';
  return { kind, devKvm, cpuFlag, module, canBootLinux: kind === 'hardware', inSandbox };
}

/** One plain paragraph about this host's KVM, for `vmm run` to print when it cannot boot Linux here. */
export function describeKvmHost(info: HostInfo = detectHost()): string {
  switch (info.kind) {
    case 'hardware':
      return `This host's KVM uses hardware virtualization (${info.module}, ${info.cpuFlag}): Linux guests run directly.`;
    case 'pvm':
      return (
        "This host's /dev/kvm is PVM (kvm_pvm), not hardware virtualization: it runs guest user mode natively but " +
        'emulates guest kernel mode, and an unmodified Linux kernel does not boot on it (it stops with a KVM emulation ' +
        'failure). Run the VM inside the nested sandbox instead: `vmm run --sandbox <config>` (a QEMU-TCG Linux with a ' +
        'real /dev/kvm; slower, but it boots).'
      );
    case 'unknown':
      return (
        `This host has /dev/kvm but no kvm_intel/kvm_amd module${info.cpuFlag ? '' : ' and no vmx/svm CPU flag'}; ` +
        'an unmodified Linux guest may not boot. If it fails, use `vmm run --sandbox <config>`.'
      );
    case 'none':
      return (
        'This host has no /dev/kvm, so no VM can run here directly. Load kvm_intel or kvm_amd (or give this ' +
        'container /dev/kvm), or use `vmm run --sandbox <config>`, which emulates a KVM host under QEMU TCG.'
      );
  }
}
