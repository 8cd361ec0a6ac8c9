import { existsSync } from 'node:fs';
import { c, errno, ERRNO, errnoName, O_CLOEXEC, O_NONBLOCK, O_RDWR } from '../../../core/native/libc.js';
import { VNET_HDR_SIZE } from '../constants.js';
import type { HostIovec } from '../iovec.js';
import type { BackendOffloads, GuestOffloads, NetBackend } from './backend.js';
import { NetBackendError } from './errors.js';
import { F_GETFL, F_SETFL, IFNAMSIZ, ifreq, ifreqFlags, ifreqName, net, Tun } from './native.js';

/** How TapBackend gets its tap: by interface name (created if asked), or from fds it is handed. */
export interface TapOptions {
  /** Interface name, or a template such as 'tap%d' with create. */
  name?: string;
  /** Create the interface when missing (root / CAP_NET_ADMIN); otherwise it must exist. */
  create?: boolean;
  /** Already opened tap fds (inherited from a launcher), one per queue pair; we own them from now on. */
  fds?: readonly number[];
  /** Queue pairs (> 1 opens the tap with IFF_MULTI_QUEUE). */
  queuePairs?: number;
  /** Path of the tun clone device (tests). */
  tunPath?: string;
}

const fail = (call: string, what: string, e = errno()): never => {
  throw new NetBackendError('Open', `${what}: ${call} failed: ${errnoName(e)} (${e})`, { call, errno: e });
};

/**
 * A Linux tap interface through /dev/net/tun (Documentation/networking/tuntap.rst):
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (| IFF_MULTI_QUEUE), a 12-byte vnet header
 * (TUNSETVNETHDRSZ, the VERSION_1 layout), guest offloads set with TUNSETOFFLOAD.
 * Every fd is non-blocking; frames are read and written one per syscall.
 * The backend owns its fds (opened or inherited) and closes them in close(); a tap it
 * created without TUNSETPERSIST disappears with its last fd.
 */
export class TapBackend implements NetBackend {
  readonly kind = 'tap';
  readonly vnetHeader: boolean;
  readonly offloads: BackendOffloads;
  private closed = false;
  private attached: boolean[];

  private constructor(
    readonly name: string,
    private readonly fds: number[],
    vnetHeader: boolean,
    private readonly multiQueue: boolean,
  ) {
    this.vnetHeader = vnetHeader;
    this.attached = fds.map(() => true);
    this.offloads = vnetHeader ? this.probeOffloads() : { host: noOff(), guest: noOff() };
  }

  get queuePairs(): number {
    return this.fds.length;
  }
  get description(): string {
    return `tap ${this.name}${this.fds.length > 1 ? ` (${this.fds.length} queues)` : ''}`;
  }

  /** Opens (or creates) a tap by name, or takes inherited fds. */
  static open(o: TapOptions): TapBackend {
    const pairs = o.fds?.length ?? o.queuePairs ?? 1;
    if (!Number.isInteger(pairs) || pairs < 1)
      throw new NetBackendError('Open', `tap: ${pairs} queue pairs asked`, { pairs });
    if (o.fds) return TapBackend.adopt(o.fds);
    const name = o.name ?? (o.create ? 'tap%d' : '');
    if (!name) throw new NetBackendError('Open', 'tap: give a name (or create: true, or fds)', {});
    if (Buffer.byteLength(name, 'latin1') >= IFNAMSIZ || /[\s/:]/.test(name)) {
      throw new NetBackendError(
        'Open',
        `tap: '${name}' is not a valid interface name (1..15 characters, no '/', ':' or spaces)`,
        { name },
      );
    }
    if (!o.create && !existsSync(`/sys/class/net/${name}`)) {
      throw new NetBackendError(
        'Open',
        `tap: interface '${name}' does not exist (create it with 'ip tuntap add ${name} mode tap${pairs > 1 ? ' multi_queue' : ''} vnet_hdr', or set create: true)`,
        { name },
      );
    }
    const multi = pairs > 1;
    const flags = Tun.IFF_TAP | Tun.IFF_NO_PI | Tun.IFF_VNET_HDR | (multi ? Tun.IFF_MULTI_QUEUE : 0);
    const fds: number[] = [];
    let actual = name;
    try {
      for (let i = 0; i < pairs; i++) {
        // Owned by this backend from here on (closed on error below or in close()).
        const fd = c.open(o.tunPath ?? '/dev/net/tun', O_RDWR | O_NONBLOCK | O_CLOEXEC, 0) as number;
        if (fd < 0) fail('open', o.tunPath ?? '/dev/net/tun');
        fds.push(fd);
        const req = ifreq(actual, flags);
        if (net.ioctlIfreq(fd, Tun.TUNSETIFF, req) < 0) {
          const e = errno();
          const hint =
            e === ERRNO.EPERM
              ? ' (needs CAP_NET_ADMIN, or a tap owned by this user)'
              : e === ERRNO.EINVAL
                ? ` (an existing '${actual}' with other flags, e.g. ${multi ? 'without' : 'with'} multi_queue or without vnet_hdr?)`
                : e === ERRNO.EBUSY
                  ? ` ('${actual}' is in use by another process)`
                  : '';
          fail('ioctl(TUNSETIFF)', `tap '${actual}'${hint}`, e);
        }
        actual = ifreqName(req);
        const sz = Int32Array.of(VNET_HDR_SIZE);
        if (net.ioctlIntPtr(fd, Tun.TUNSETVNETHDRSZ, sz) < 0) fail('ioctl(TUNSETVNETHDRSZ)', `tap '${actual}'`);
      }
    } catch (err) {
      for (const fd of fds) c.close(fd);
      throw err;
    }
    return new TapBackend(actual, fds, true, multi);
  }

  /** Takes inherited tap fds: checks they are taps without packet info, makes them non-blocking. */
  private static adopt(fds: readonly number[]): TapBackend {
    let name = '';
    let vnet = true;
    let multi = false;
    for (const fd of fds) {
      if (!Number.isInteger(fd) || fd < 0)
        throw new NetBackendError('Open', `tap: inherited fd ${fd} is not an fd`, { fd });
      const req = new Uint8Array(40);
      if (net.ioctlIfreq(fd, Tun.TUNGETIFF, req) < 0) fail('ioctl(TUNGETIFF)', `tap fd ${fd} (not a tun/tap fd?)`);
      const flags = ifreqFlags(req);
      if ((flags & Tun.IFF_TAP) === 0)
        throw new NetBackendError('Open', `fd ${fd} is a tun (layer 3) device, not a tap`, { fd, flags });
      if ((flags & Tun.IFF_NO_PI) === 0)
        throw new NetBackendError('Open', `tap fd ${fd} was opened without IFF_NO_PI`, { fd, flags });
      vnet &&= (flags & Tun.IFF_VNET_HDR) !== 0;
      multi ||= (flags & Tun.IFF_MULTI_QUEUE) !== 0;
      name = ifreqName(req);
      const fl = c.fcntl(fd, F_GETFL, 0) as number;
      if (fl < 0 || (c.fcntl(fd, F_SETFL, fl | O_NONBLOCK) as number) < 0) fail('fcntl(O_NONBLOCK)', `tap fd ${fd}`);
      if (vnet && net.ioctlIntPtr(fd, Tun.TUNSETVNETHDRSZ, Int32Array.of(VNET_HDR_SIZE)) < 0)
        fail('ioctl(TUNSETVNETHDRSZ)', `tap fd ${fd}`);
    }
    return new TapBackend(name, [...fds], vnet, multi);
  }

  /** Which TUNSETOFFLOAD flags the kernel takes (UFO was removed in Linux 4.14). Leaves offloads off. */
  private probeOffloads(): BackendOffloads {
    const fd = this.fds[0];
    const base = Tun.TUN_F_CSUM | Tun.TUN_F_TSO4 | Tun.TUN_F_TSO6 | Tun.TUN_F_TSO_ECN;
    const tso = (c.ioctlInt(fd, Tun.TUNSETOFFLOAD, base) as number) === 0;
    const csum = tso || (c.ioctlInt(fd, Tun.TUNSETOFFLOAD, Tun.TUN_F_CSUM) as number) === 0;
    const ufo = (c.ioctlInt(fd, Tun.TUNSETOFFLOAD, base | Tun.TUN_F_UFO) as number) === 0;
    for (const f of this.fds) c.ioctlInt(f, Tun.TUNSETOFFLOAD, 0);
    // A tap takes partial checksums and GSO frames (TCP, ECN, UFO) from us whatever TUNSETOFFLOAD says.
    return {
      host: { csum: true, tso4: true, tso6: true, ecn: true, ufo: true },
      guest: { csum, tso4: tso, tso6: tso, ecn: tso, ufo: ufo && csum },
    };
  }

  fd(queue: number): number {
    return this.fds[queue] ?? -1;
  }

  send(queue: number, frame: Uint8Array): boolean {
    const fd = this.live(queue, 'Send');
    const n = c.write(fd, frame, frame.length) as number;
    if (n >= 0) return true;
    const e = errno();
    if (e === ERRNO.EAGAIN || e === ERRNO.ENOBUFS) return false;
    throw new NetBackendError('Send', `${this.name}: write failed: ${errnoName(e)} (${e})`, { errno: e, queue });
  }

  sendv(queue: number, iov: HostIovec): boolean {
    const fd = this.live(queue, 'Send');
    // The iovec bytes live for this call only; the addresses they hold are guest RAM (HostIovec).
    const n = net.writev(fd, iov.bytes, iov.count) as number;
    if (n >= 0) return true;
    const e = errno();
    if (e === ERRNO.EAGAIN || e === ERRNO.ENOBUFS) return false;
    throw new NetBackendError('Send', `${this.name}: writev failed: ${errnoName(e)} (${e})`, { errno: e, queue });
  }

  recv(queue: number, buf: Uint8Array): number {
    const fd = this.live(queue, 'Recv');
    const n = c.read(fd, buf, buf.length) as number;
    if (n >= 0) return n;
    const e = errno();
    if (e === ERRNO.EAGAIN || e === ERRNO.EINTR) return -1;
    throw new NetBackendError('Recv', `${this.name}: read failed: ${errnoName(e)} (${e})`, { errno: e, queue });
  }

  setGuestOffloads(o: GuestOffloads): void {
    if (!this.vnetHeader || this.closed) return;
    let flags = 0;
    if (o.csum && this.offloads.guest.csum) {
      flags |= Tun.TUN_F_CSUM;
      if (o.tso4 && this.offloads.guest.tso4) flags |= Tun.TUN_F_TSO4;
      if (o.tso6 && this.offloads.guest.tso6) flags |= Tun.TUN_F_TSO6;
      if (o.ecn && (flags & (Tun.TUN_F_TSO4 | Tun.TUN_F_TSO6)) !== 0) flags |= Tun.TUN_F_TSO_ECN;
      if (o.ufo && this.offloads.guest.ufo) flags |= Tun.TUN_F_UFO;
    }
    for (const fd of this.fds) {
      if ((c.ioctlInt(fd, Tun.TUNSETOFFLOAD, flags) as number) < 0)
        fail('ioctl(TUNSETOFFLOAD)', `tap '${this.name}' offloads 0x${flags.toString(16)}`);
    }
  }

  /** Detaches queues the driver does not use (TUNSETQUEUE), so the kernel steers nothing to them. */
  setActiveQueuePairs(n: number): void {
    if (!this.multiQueue || this.closed) return;
    this.fds.forEach((fd, i) => {
      const want = i < Math.max(1, n);
      if (want === this.attached[i]) return;
      const req = ifreq('', want ? Tun.IFF_ATTACH_QUEUE : Tun.IFF_DETACH_QUEUE);
      if (net.ioctlIfreq(fd, Tun.TUNSETQUEUE, req) === 0) this.attached[i] = want;
    });
  }

  private live(queue: number, kind: 'Send' | 'Recv'): number {
    const fd = this.fds[queue];
    if (this.closed || fd === undefined)
      throw new NetBackendError(
        this.closed ? 'Closed' : kind,
        `${this.name}: queue ${queue} is ${this.closed ? 'closed' : 'not open'}`,
        { queue },
      );
    return fd;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.fds) c.close(fd);
  }
}

const noOff = () => ({ csum: false, tso4: false, tso6: false, ecn: false, ufo: false });
