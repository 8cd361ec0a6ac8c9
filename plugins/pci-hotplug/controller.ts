import type { BusDevice } from '../../core/bus/bus.js';
import type { Logger } from '../../core/logger.js';
import { formatPciAddress, type PciAttachment, type PciBusChange } from '../../core/pci/index.js';
import type { PciHotplugController } from '../../core/vmm/hotplug.js';
import { LogRateLimiter, suppressedNote } from '../../core/ratelimit/log-limiter.js';
import { PciHotplugError } from './errors.js';
import { HOTPLUG_WINDOW_SIZE, HotplugRegister } from './registers.js';

/** A removal the guest has been asked for: resolved by its eject, rejected on timeout or VM stop. */
interface PendingEject {
  readonly attachment: PciAttachment;
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
  timer?: NodeJS.Timeout;
}

/** What the controller needs: the PCI bus's current functions, the notification line and a logger. */
export interface HotplugControllerDeps {
  /** The functions plugged in now (PciBus.attachments). */
  attachments(): readonly PciAttachment[];
  /** Raises the notification (the GED's interrupt): the guest runs _EVT, which reads PCIU/PCID. */
  notify(): void;
  logger: Logger;
}

/**
 * ACPI PCI hotplug on segment 0, as Cloud Hypervisor and QEMU's PIIX4 do it: the VMM sets a slot's bit in PCIU
 * (added) or PCID (remove it, please) and raises the notification; the guest's _EVT reads both (which clears them)
 * and Notify()s each slot's ACPI device (1 = device check: rescan it, 3 = eject request); for an eject the guest
 * unbinds its driver and runs the slot's _EJ0, which writes the slot's bit to B0EJ. Only then does removal
 * proceed (requestEject resolves). Hostile or confused guests: an eject of a slot without a function, an
 * unknown segment, out-of-window or odd-sized accesses, and ejects of present functions nobody asked for are
 * logged (rate limited per kind, LogRateLimiter: an eject storm cannot flood the log) and ignored.
 */
export class HotplugController implements PciHotplugController {
  private up = 0;
  private down = 0;
  private segment = 0;
  private readonly pending = new Map<number, PendingEject>();
  /** Slots the guest ejected and whose function is being removed (its 'removed' change needs no notification). */
  private readonly ejected = new Set<number>();
  private notifyQueued = false;
  private stopped = false;
  private readonly logLimit = new LogRateLimiter();
  /** Guest accesses refused (bad offset or size, empty-slot ejects, unknown segments). */
  refused = 0;
  /** Ejects the guest wrote for slots nobody asked it to eject (the function stays plugged). */
  unaskedEjects = 0;

  constructor(private readonly d: HotplugControllerDeps) {}

  /** PciBus.onChange listener: announces functions plugged or lost while the guest runs. */
  changed(change: PciBusChange): void {
    if (!change.running || this.stopped) return;
    const slot = change.attachment.address.device;
    if (change.kind === 'added') {
      this.ejected.delete(slot);
      this.up |= 1 << slot;
      this.queueNotify();
      return;
    }
    if (this.ejected.delete(slot)) return; // the guest ejected it: nothing to tell
    // A surprise removal: the guest still has a driver on it; an eject request makes it let go.
    this.pending.get(slot)?.resolve();
    this.down |= 1 << slot;
    this.queueNotify();
  }

  requestEject(attachment: PciAttachment, timeoutMs: number): Promise<void> {
    if (this.stopped) return Promise.reject(new PciHotplugError('Stopped', 'the VM is stopping'));
    const slot = attachment.address.device;
    const existing = this.pending.get(slot);
    if (existing) return existing.done;
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const p: PendingEject = { attachment, done, resolve, reject };
    const finish = (): void => {
      clearTimeout(p.timer);
      this.pending.delete(slot);
    };
    p.resolve = () => {
      finish();
      resolve();
    };
    p.reject = (err) => {
      finish();
      reject(err);
    };
    p.timer = setTimeout(() => {
      const where = `${formatPciAddress(attachment.address)} (${attachment.device.id})`;
      p.reject(
        new PciHotplugError('EjectTimeout', `the guest did not eject ${where} within ${timeoutMs} ms`, {
          slot,
          device: attachment.device.id,
        }),
      );
    }, timeoutMs);
    this.pending.set(slot, p);
    this.down |= 1 << slot;
    this.queueNotify();
    this.d.logger.info({ slot, device: attachment.device.id }, 'asked the guest to eject a PCI function');
    return done;
  }

  /** The register window on the VMM's MMIO bus. */
  readonly bus: BusDevice = {
    read: (offset, data) => {
      data.fill(0);
      if (!this.aligned(offset, data)) return;
      const v = this.readRegister(Number(offset));
      new DataView(data.buffer, data.byteOffset, 4).setUint32(0, v >>> 0, true);
    },
    write: (offset, data) => {
      if (!this.aligned(offset, data)) return;
      this.writeRegister(Number(offset), new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true));
    },
  };

  private aligned(offset: bigint, data: Uint8Array): boolean {
    if (data.length === 4 && offset % 4n === 0n && offset < BigInt(HOTPLUG_WINDOW_SIZE)) return true;
    this.refuse({ offset: Number(offset), size: data.length }, 'hotplug register access is not a 32-bit register');
    return false;
  }

  private readRegister(offset: number): number {
    if (offset === HotplugRegister.PSEG) return this.segment;
    if (this.segment !== 0) return 0;
    if (offset === HotplugRegister.PCIU) {
      const v = this.up;
      this.up = 0;
      return v;
    }
    if (offset === HotplugRegister.PCID) {
      const v = this.down;
      this.down = 0;
      return v;
    }
    return 0;
  }

  private writeRegister(offset: number, value: number): void {
    if (offset === HotplugRegister.PSEG) {
      if (value !== 0) this.refuse({ segment: value }, 'the guest selected a PCI segment that does not exist');
      this.segment = value;
      return;
    }
    if (offset !== HotplugRegister.B0EJ) return; // PCIU/PCID are read-only
    if (this.segment !== 0) return this.refuse({ segment: this.segment }, 'eject on a PCI segment that does not exist');
    for (let slot = 0; slot < 32; slot++) if (value & (1 << slot)) this.eject(slot);
  }

  private eject(slot: number): void {
    const attachment = this.d.attachments().find((a) => a.address.device === slot);
    if (!attachment || slot === 0) return this.refuse({ slot }, 'the guest ejected a slot that holds no function');
    const p = this.pending.get(slot);
    if (!p) {
      this.unaskedEjects++;
      this.logLimit.log('unasked', (suppressed) =>
        this.d.logger.warn(
          { slot, device: attachment.device.id, unaskedEjects: this.unaskedEjects },
          'the guest ejected a PCI function nobody asked it to eject: it stays plugged until removed from the VMM' +
            suppressedNote(suppressed),
        ),
      );
      return;
    }
    this.d.logger.info({ slot, device: attachment.device.id }, 'the guest ejected a PCI function');
    this.ejected.add(slot);
    p.resolve();
  }

  private refuse(data: Record<string, unknown>, what: string): void {
    this.refused++;
    this.logLimit.log('refused', (suppressed) =>
      this.d.logger.warn({ ...data, refused: this.refused }, `${what}${suppressedNote(suppressed)}`),
    );
  }

  private queueNotify(): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    // after the current task: a device added at runtime is activated before the guest looks at it
    setImmediate(() => {
      this.notifyQueued = false;
      if (!this.stopped && (this.up || this.down)) this.d.notify();
    });
  }

  /** The VM stops: pending removals fail, nothing more is announced. */
  stop(): void {
    this.stopped = true;
    for (const p of [...this.pending.values()])
      p.reject(new PciHotplugError('Stopped', `the VM stopped before the guest ejected ${p.attachment.device.id}`));
  }
}
