import type { Disposable } from '../bus/bus.js';
import type { EventFd } from '../events/event-loop.js';
import type { Allocation } from '../platform/resources.js';
import type { InterruptContext } from './context.js';
import { InterruptError } from './errors.js';
import type { LegacyIrq, TriggerMode } from './interrupts.js';

/**
 * A legacy line over the VM: setIrqLine without an irqfd; with one, an eventfd the hypervisor
 * listens to (plus, for level lines, a resample eventfd watched on the event loop).
 */
export class VmLegacyIrq implements LegacyIrq {
  private fd: EventFd | undefined;
  private resample: EventFd | undefined;
  private watch: Disposable | undefined;
  private readonly listeners = new Set<() => void>();
  private asserted = false;
  private disposed = false;

  constructor(
    readonly owner: string,
    readonly mode: TriggerMode,
    private readonly line: Allocation,
    private readonly ctx: InterruptContext,
    wantIrqfd: boolean,
  ) {
    if (wantIrqfd) this.wireIrqfd();
  }

  get gsi(): number {
    return this.line.number;
  }

  get notifier(): EventFd | undefined {
    return this.fd;
  }

  trigger(): void {
    this.setLevel(true);
  }

  setLevel(level: boolean): void {
    if (this.disposed) throw new InterruptError('Disposed', `interrupt line ${this.gsi} of '${this.owner}' was freed`);
    if (this.fd) {
      if (level) this.fd.write(1n);
      return;
    }
    const vm = this.ctx.vm();
    if (!vm) return;
    if (this.mode === 'edge') {
      if (!level) return;
      vm.setIrqLine(this.gsi, true);
      vm.setIrqLine(this.gsi, false);
      return;
    }
    this.asserted = level;
    vm.setIrqLine(this.gsi, level);
  }

  onResample(cb: () => void): Disposable {
    this.listeners.add(cb);
    return { dispose: () => this.listeners.delete(cb) };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.listeners.clear();
    this.watch?.dispose();
    const vm = this.ctx.vm();
    if (this.fd) {
      try {
        vm?.unregisterIrqfd(this.fd, this.gsi);
      } catch (err) {
        this.ctx.logger?.warn({ err, gsi: this.gsi, owner: this.owner }, 'irqfd unregister failed');
      }
      this.fd.close();
      this.resample?.close();
    } else if (this.asserted) {
      try {
        vm?.setIrqLine(this.gsi, false);
      } catch {
        /* the VM may be closed already */
      }
    }
    this.line.dispose();
  }

  private wireIrqfd(): void {
    const vm = this.ctx.vm();
    if (!vm?.capabilities.irqfd) return;
    const fd = this.ctx.eventFds.create({ nonBlocking: true });
    const resample = this.mode === 'level' ? this.ctx.eventFds.create({ nonBlocking: true }) : undefined;
    try {
      vm.registerIrqfd(fd, this.gsi, resample);
    } catch (err) {
      fd.close();
      resample?.close();
      throw err;
    }
    this.fd = fd;
    this.resample = resample;
    if (resample && this.ctx.eventLoop) {
      this.watch = this.ctx.eventLoop.watch(resample.fd, { readable: true }, () => {
        if (resample.read() === 0n) return;
        for (const cb of [...this.listeners]) cb();
      });
    }
  }
}
