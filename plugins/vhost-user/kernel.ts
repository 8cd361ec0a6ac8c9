import { c, errno, errnoName, ERRNO, O_CLOEXEC, O_RDWR } from '../../core/native/libc.js';
import { VhostUserError } from './errors.js';

/** The vhost ioctl type (linux/vhost.h: VHOST_VIRTIO). */
const VHOST = 0xaf;
/** _IOC(dir, VHOST, nr, size) as a number (the top bits exceed int32: no shifts). */
const ioc = (dir: number, nr: number, size: number): number => dir * 2 ** 30 + size * 2 ** 16 + VHOST * 256 + nr;
const io = (nr: number): number => ioc(0, nr, 0);
const iow = (nr: number, size: number): number => ioc(1, nr, size);
const ior = (nr: number, size: number): number => ioc(2, nr, size);
const iowr = (nr: number, size: number): number => ioc(3, nr, size);

/** The vhost ioctls (linux/vhost.h) the kernel back ends share, and vhost-vsock's own two. */
export const VhostIoctl = {
  GET_FEATURES: ior(0x00, 8),
  SET_FEATURES: iow(0x00, 8),
  SET_OWNER: io(0x01),
  SET_MEM_TABLE: iow(0x03, 8), // struct vhost_memory: nregions, padding, then the regions
  SET_VRING_NUM: iow(0x10, 8),
  SET_VRING_ADDR: iow(0x11, 40),
  SET_VRING_BASE: iow(0x12, 8),
  GET_VRING_BASE: iowr(0x12, 8),
  SET_VRING_KICK: iow(0x20, 8),
  SET_VRING_CALL: iow(0x21, 8),
  VSOCK_SET_GUEST_CID: iow(0x60, 8),
  VSOCK_SET_RUNNING: iow(0x61, 4),
} as const;

/** One guest RAM region as the kernel back end reads it: guest-physical range and its address in this process. */
export interface KernelMemRegion {
  readonly guestPhysAddr: bigint;
  readonly size: bigint;
  readonly userAddr: bigint;
}

/** One ring's set-up: size, ring addresses in this process, where it starts, its kick and call eventfds. */
export interface KernelVring {
  readonly index: number;
  readonly size: number;
  readonly desc: bigint;
  readonly avail: bigint;
  readonly used: bigint;
  readonly base: number;
  readonly kickFd: number;
  readonly callFd: number;
}

/**
 * A vhost device of the host kernel (/dev/vhost-vsock, /dev/vhost-net: Documentation/virt and linux/vhost.h):
 * the kernel serves virtqueues straight from this process's memory, woken by the kick eventfds, and signals
 * the call eventfds. Unlike vhost-user it needs no shared fds: it reads our own mappings by address.
 * Opening it makes this process its owner (SET_OWNER). Every call throws VhostUserError naming the ioctl.
 */
export class VhostKernel {
  private constructor(
    readonly path: string,
    private fd: number,
  ) {}

  /** Opens the device and becomes its owner; throws VhostUserError('Connect') with a hint when absent. */
  static open(path: string): VhostKernel {
    const fd = c.open(path, O_RDWR | O_CLOEXEC, 0) as number;
    if (fd < 0) {
      const e = errno();
      const hint = e === ERRNO.ENOENT ? ' (load the module: modprobe vhost_vsock / vhost_net)' : '';
      throw new VhostUserError('Connect', `cannot open ${path}: ${errnoName(e)}${hint}`, { path, errno: e });
    }
    const dev = new VhostKernel(path, fd);
    try {
      dev.call('SET_OWNER', VhostIoctl.SET_OWNER, undefined);
    } catch (err) {
      dev.close();
      throw err;
    }
    return dev;
  }

  /** The virtio features the kernel back end offers. */
  features(): bigint {
    const b = Buffer.alloc(8);
    this.call('GET_FEATURES', VhostIoctl.GET_FEATURES, b);
    return b.readBigUInt64LE(0);
  }

  /** The features the driver accepted. */
  setFeatures(features: bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(features);
    this.call('SET_FEATURES', VhostIoctl.SET_FEATURES, b);
  }

  /** The guest RAM table (struct vhost_memory + vhost_memory_region[]). */
  setMemTable(regions: readonly KernelMemRegion[]): void {
    const b = Buffer.alloc(8 + 32 * regions.length);
    b.writeUInt32LE(regions.length, 0);
    regions.forEach((r, i) => {
      b.writeBigUInt64LE(r.guestPhysAddr, 8 + 32 * i);
      b.writeBigUInt64LE(r.size, 16 + 32 * i);
      b.writeBigUInt64LE(r.userAddr, 24 + 32 * i);
    });
    this.call('SET_MEM_TABLE', VhostIoctl.SET_MEM_TABLE, b);
  }

  /** Hands one ring to the kernel: size, base, addresses, call and kick eventfds (this order, as QEMU does). */
  setVring(q: KernelVring): void {
    this.call('SET_VRING_NUM', VhostIoctl.SET_VRING_NUM, state(q.index, q.size));
    this.call('SET_VRING_BASE', VhostIoctl.SET_VRING_BASE, state(q.index, q.base));
    const a = Buffer.alloc(40);
    a.writeUInt32LE(q.index, 0);
    a.writeBigUInt64LE(q.desc, 8);
    a.writeBigUInt64LE(q.used, 16);
    a.writeBigUInt64LE(q.avail, 24);
    this.call('SET_VRING_ADDR', VhostIoctl.SET_VRING_ADDR, a);
    this.call('SET_VRING_CALL', VhostIoctl.SET_VRING_CALL, state(q.index, q.callFd));
    this.call('SET_VRING_KICK', VhostIoctl.SET_VRING_KICK, state(q.index, q.kickFd));
  }

  /** Stops a ring and returns where the kernel stopped in its available ring. */
  stopVring(index: number): number {
    const b = state(index, 0);
    this.call('GET_VRING_BASE', VhostIoctl.GET_VRING_BASE, b);
    return b.readUInt32LE(4);
  }

  /** A device-specific ioctl with a u64 or u32 argument (e.g. VSOCK_SET_GUEST_CID, VSOCK_SET_RUNNING). */
  setValue(name: string, req: number, value: bigint, bytes: 4 | 8): void {
    const b = Buffer.alloc(bytes);
    if (bytes === 8) b.writeBigUInt64LE(value);
    else b.writeUInt32LE(Number(value));
    this.call(name, req, b);
  }

  /** Closes the device: the kernel stops every ring and forgets the owner. Idempotent. */
  close(): void {
    if (this.fd >= 0) c.close(this.fd);
    this.fd = -1;
  }

  private call(name: string, req: number, arg: Buffer | undefined): void {
    if (this.fd < 0) throw new VhostUserError('Disconnected', `${this.path}: closed`, {});
    const r = (arg ? c.ioctlPtr(this.fd, req, arg) : c.ioctlInt(this.fd, req, 0)) as number;
    if (r < 0) {
      const e = errno();
      throw new VhostUserError('Protocol', `${this.path}: VHOST_${name} failed: ${errnoName(e)}`, {
        ioctl: name,
        errno: e,
      });
    }
  }
}

/** struct vhost_vring_state / vhost_vring_file: a ring index and a number (or fd). */
function state(index: number, num: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(index, 0);
  b.writeInt32LE(num, 4);
  return b;
}
