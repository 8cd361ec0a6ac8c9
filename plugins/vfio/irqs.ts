import type { Disposable } from '../../core/bus/bus.js';
import type { EventFd, EventFdFactory, EventLoop } from '../../core/events/event-loop.js';
import type { Interrupts, LegacyIrq, MsiGroup } from '../../core/interrupts/interrupts.js';
import type { Logger } from '../../core/logger.js';
import type { MsiCapability } from '../pci/msi.js';
import type { MsixTable } from '../pci/msix.js';
import type { RefusalLog } from '../pci/refusals.js';
import { VfioPciIrq } from './abi.js';
import type { VfioDeviceHandle } from './kernel.js';

/** Which interrupt kind the physical function signals through VFIO now. */
export type VfioIrqMode = 'none' | 'intx' | 'msi' | 'msix';

/** What VfioIrqs needs: the device, the VM's interrupt services and the guest-facing capabilities. */
export interface VfioIrqsOptions {
  readonly id: string;
  readonly device: VfioDeviceHandle;
  readonly interrupts: Interrupts;
  readonly eventFds: EventFdFactory;
  readonly loop: EventLoop;
  readonly msi?: MsiCapability;
  readonly msix?: MsixTable;
  readonly refusals: RefusalLog;
  readonly logger?: Logger;
}

/**
 * The physical function's interrupts wired to the guest's view of them:
 * - INTx: VFIO signals an eventfd (the host masks the line at each interrupt); the main loop asserts the
 *   guest's line; the line's resample (the guest's EOI) unmasks it in VFIO, which signals again if the
 *   device still asserts. Used while neither MSI nor MSI-X is enabled by the guest.
 * - MSI / MSI-X: one MsiGroup (Interrupts service) per capability; when the guest enables one, VFIO gets
 *   each vector's irqfd (the group's notifier; without irqfds an eventfd the loop turns into a trigger), so
 *   the device's interrupts go to KVM without an exit. Guest masking is the group's: a masked vector's
 *   irqfd is detached and its signals wait as the pending bit (PBA), delivered at unmask.
 * VFIO refusing a mode is logged (rate limited) and leaves the function without interrupts; the VMM goes on.
 */
export class VfioIrqs implements Disposable {
  private modeNow: VfioIrqMode = 'none';
  private intx: LegacyIrq | undefined;
  private intxFd: EventFd | undefined;
  private readonly disposables: Disposable[] = [];
  private msiGroup: MsiGroup | undefined;
  private msixGroup: MsiGroup | undefined;
  private readonly ownFds = new Map<string, EventFd>();
  private closed = false;
  private msiCount = 0;

  constructor(private readonly o: VfioIrqsOptions) {}

  /** The mode VFIO is in. */
  get mode(): VfioIrqMode {
    return this.modeNow;
  }

  /** Connects the capabilities to MSI groups and starts INTx on `intx` (when the function has a pin). */
  plugged(intx: LegacyIrq | undefined, requesterId: number): void {
    const { o } = this;
    if (o.msi) {
      this.msiGroup = o.interrupts.msiGroup({ owner: `${o.id}:msi`, count: o.msi.vectors, devid: requesterId });
      o.msi.connect(this.msiGroup);
      this.disposables.push(o.msi.cap.watch({ onWrite: () => this.sync() }));
    }
    if (o.msix) {
      this.msixGroup = o.interrupts.msiGroup({ owner: `${o.id}:msix`, count: o.msix.vectors, devid: requesterId });
      o.msix.connect(this.msixGroup);
      this.disposables.push(o.msix.cap.watch({ onWrite: () => this.sync() }));
    }
    if (intx && o.device.irqInfo(VfioPciIrq.INTX).count > 0) {
      this.intx = intx;
      const fd = o.eventFds.create();
      this.intxFd = fd;
      this.disposables.push(
        o.loop.watch(fd.fd, { readable: true }, () => {
          if (fd.read() > 0n && this.modeNow === 'intx') this.intx?.setLevel(true);
        }),
        intx.onResample(() => {
          if (this.modeNow === 'intx')
            this.vfio('unmask INTx', () => o.device.setIrqs(VfioPciIrq.INTX, 'unmask', 0, 1, { kind: 'none' }));
        }),
      );
    }
    this.sync();
  }

  /** Brings VFIO in line with the guest's MSI / MSI-X enable bits (called after writes to either capability). */
  sync(): void {
    if (this.closed) return;
    const want: VfioIrqMode = this.o.msix?.enabled
      ? 'msix'
      : this.o.msi && this.o.msi.enabledVectors > 0
        ? 'msi'
        : this.intxFd
          ? 'intx'
          : 'none';
    const count = want === 'msi' ? this.o.msi!.enabledVectors : 0;
    if (want === this.modeNow && (want !== 'msi' || count === this.msiCount)) return;
    this.disable();
    if (want === 'intx') this.enable('intx', VfioPciIrq.INTX, [this.intxFd!.fd]);
    else if (want === 'msix')
      this.enable('msix', VfioPciIrq.MSIX, this.vectorFds(this.msixGroup!, this.o.msix!.vectors));
    else if (want === 'msi') {
      this.msiCount = count;
      this.enable('msi', VfioPciIrq.MSI, this.vectorFds(this.msiGroup!, count));
    }
  }

  private enable(mode: VfioIrqMode, index: number, fds: number[]): void {
    const ok = this.vfio(`enable ${mode} (${fds.length} vectors)`, () =>
      this.o.device.setIrqs(index, 'trigger', 0, fds.length, { kind: 'eventfd', fds }),
    );
    if (ok) this.modeNow = mode;
  }

  /** Turns the current mode off in VFIO (and drops the guest's INTx level). */
  private disable(): void {
    const index =
      this.modeNow === 'intx'
        ? VfioPciIrq.INTX
        : this.modeNow === 'msi'
          ? VfioPciIrq.MSI
          : this.modeNow === 'msix'
            ? VfioPciIrq.MSIX
            : -1;
    if (index >= 0)
      this.vfio(`disable ${this.modeNow}`, () => this.o.device.setIrqs(index, 'trigger', 0, 0, { kind: 'none' }));
    if (this.modeNow === 'intx') this.intx?.setLevel(false);
    this.modeNow = 'none';
  }

  /** Each vector's eventfd: the group's irqfd, or one of ours whose signal the loop turns into trigger(). */
  private vectorFds(group: MsiGroup, count: number): number[] {
    const fds: number[] = [];
    for (let i = 0; i < count; i++) {
      const n = group.vector(i).notifier;
      if (n) {
        fds.push(n.fd);
        continue;
      }
      const key = `${group.owner}:${i}`;
      let own = this.ownFds.get(key);
      if (!own) {
        const fd = this.o.eventFds.create();
        own = fd;
        this.ownFds.set(key, fd);
        this.disposables.push(
          this.o.loop.watch(fd.fd, { readable: true }, () => {
            if (fd.read() > 0n) group.trigger(i);
          }),
        );
      }
      fds.push(own.fd);
    }
    return fds;
  }

  private vfio(what: string, call: () => void): boolean {
    try {
      call();
      return true;
    } catch (err) {
      this.o.refusals.refuse(`vfio-irq:${this.o.id}`, `${this.o.id}: VFIO refused to ${what}`, { err: String(err) });
      return false;
    }
  }

  /** Disables every interrupt in VFIO and frees the groups and eventfds. */
  dispose(): void {
    if (this.closed) return;
    this.disable();
    this.closed = true;
    for (const d of this.disposables.splice(0).reverse()) d.dispose();
    this.msiGroup?.dispose();
    this.msixGroup?.dispose();
    this.intxFd?.close();
    for (const f of this.ownFds.values()) f.close();
    this.ownFds.clear();
  }
}
