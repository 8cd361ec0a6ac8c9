import type { Hypervisor, HypervisorCapabilities, Vm } from '../../core/hypervisor/hypervisor.js';
import { c, errno, ERRNO, errnoName, O_CLOEXEC, O_RDWR } from '../../core/native/libc.js';
import { KVM_API_VERSION } from './abi/ioctls.js';
import { capNumber, KVM_CAP } from './abi/caps.js';
import { KvmError } from './errors.js';
import { ioctlNum, ioctlNumRaw } from './native.js';
import { KvmVm } from './vm.js';

/** Where the KVM device is (default /dev/kvm). */
export interface KvmHypervisorOptions {
  /** Character device to open; default /dev/kvm. */
  devicePath?: string;
}

/** Capabilities read with KVM_CHECK_EXTENSION on an fd (the system fd, or a VM's for per-VM answers). */
export function readCapabilities(fd: number, apiVersion: number): HypervisorCapabilities {
  const check = (name: string): number => {
    const n = capNumber(name);
    if (n === undefined) return 0;
    const r = ioctlNumRaw(fd, 'CHECK_EXTENSION', n);
    return r > 0 ? r : 0;
  };
  const nrVcpus = check('NR_VCPUS');
  return {
    apiVersion,
    irqchip: check('IRQCHIP') > 0,
    irqfd: check('IRQFD') > 0,
    ioeventfd: check('IOEVENTFD') > 0,
    dirtyLog: check('USER_MEMORY') > 0, // dirty logging comes with user memory slots
    maxVcpus: check('MAX_VCPUS') || nrVcpus || 4,
    maxMemorySlots: check('NR_MEMSLOTS') || 32,
    check,
  };
}

/**
 * The KVM backend. SAFETY: owns the /dev/kvm fd opened by probe() (closed by close()).
 * VMs borrow it (for KVM_GET_SUPPORTED_CPUID), so close VMs before the hypervisor.
 */
export class KvmHypervisor implements Hypervisor {
  readonly name = 'kvm';
  readonly devicePath: string;
  private sysFd = -1;
  private caps: HypervisorCapabilities | undefined;
  private vcpuMmapSize = 0;

  constructor(opts: KvmHypervisorOptions = {}) {
    this.devicePath = opts.devicePath ?? '/dev/kvm';
  }

  probe(): HypervisorCapabilities {
    if (this.caps) return this.caps;
    const fd = Number(c.open(this.devicePath, O_RDWR | O_CLOEXEC, 0));
    if (fd < 0) {
      const e = errno();
      const data = { path: this.devicePath, errno: e };
      if (e === ERRNO.ENOENT || e === ERRNO.ENXIO || e === ERRNO.ENODEV) {
        throw new KvmError(
          'NoDevice',
          `${this.devicePath} does not exist: load the kvm module (kvm_intel/kvm_amd), enable virtualization in the firmware, or run in a VM with nested virtualization`,
          data,
        );
      }
      if (e === ERRNO.EACCES || e === ERRNO.EPERM) {
        throw new KvmError(
          'PermissionDenied',
          `cannot open ${this.devicePath}: permission denied — add this user to the 'kvm' group (or run as root)`,
          data,
        );
      }
      throw new KvmError('NoDevice', `cannot open ${this.devicePath}: ${errnoName(e)} (${e})`, data);
    }
    try {
      const version = ioctlNumRaw(fd, 'GET_API_VERSION');
      if (version !== KVM_API_VERSION) {
        throw new KvmError(
          'ApiVersion',
          `${this.devicePath} reports KVM API version ${version}, this backend needs ${KVM_API_VERSION}`,
          { version },
        );
      }
      this.vcpuMmapSize = ioctlNum(fd, 'GET_VCPU_MMAP_SIZE');
      this.caps = readCapabilities(fd, version);
      this.sysFd = fd;
      return this.caps;
    } catch (e) {
      c.close(fd);
      throw e;
    }
  }

  /**
   * Throws a KvmError naming every capability in `names` the host lacks
   * ('IRQFD' or 'KVM_CAP_IRQFD'; unknown names count as missing).
   */
  requireCapabilities(...names: string[]): void {
    const caps = this.probe();
    const missing = names.filter((n) => caps.check(n) <= 0);
    if (missing.length > 0) {
      const full = missing.map((n) => (n.startsWith('KVM_CAP_') ? n : `KVM_CAP_${n}`));
      const unknown = full.filter((n) => !(n in KVM_CAP));
      throw new KvmError(
        'MissingCapability',
        `${this.devicePath} lacks ${full.join(', ')}${unknown.length ? ` (unknown to this backend: ${unknown.join(', ')})` : ''}`,
        { missing: full },
      );
    }
  }

  createVm(): Vm {
    return this.createKvmVm();
  }

  createKvmVm(): KvmVm {
    this.probe();
    const fd = ioctlNum(this.sysFd, 'CREATE_VM', 0);
    try {
      return new KvmVm(fd, this.sysFd, readCapabilities(fd, KVM_API_VERSION), this.vcpuMmapSize);
    } catch (e) {
      c.close(fd);
      throw e;
    }
  }

  close(): void {
    if (this.sysFd >= 0) c.close(this.sysFd);
    this.sysFd = -1;
    this.caps = undefined;
  }
}
