import type { Bus, Disposable } from '../../core/bus/bus.js';
import type { DeviceRegistry } from '../../core/device/device.js';
import type { EventFd, EventFdFactory } from '../../core/events/event-loop.js';
import type { Interrupts } from '../../core/interrupts/interrupts.js';
import type { IoEventRegistration, Vm } from '../../core/hypervisor/hypervisor.js';
import type { Logger } from '../../core/logger.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import type { KernelCmdline, Resources } from '../../core/platform/resources.js';
import type { AcpiTables } from '../../core/acpi/tables.js';
import type { VirtioAttachment, VirtioAttachOptions, VirtioTransportHost } from '../../core/virtio/transport.js';
import { VIRTIO_F_VERSION_1, type VirtioDevice } from '../../core/virtio/virtio.js';
import { MAX_QUEUE_SIZE, isPowerOfTwo } from '../virtio/constants.js';
import { VirtioMmioTransport, type InterruptLine } from './device.js';
import { VirtioMmioError } from './errors.js';
import { MMIO_WINDOW_SIZE, Reg } from './registers.js';
import { virtioMmioDsdt, type MmioAcpiWindow } from './acpi.js';

/**
 * The VM services a VirtioMmioHost attaches devices with: bus, resources, interrupts, the kernel command line,
 * eventfds, the VM and guest memory, and optionally the device registry and ACPI tables.
 */
export interface VirtioMmioHostDeps {
  bus: Bus;
  /** Each device's 4 KiB window comes from the 'mmio32' space (freed on detach). */
  resources: Resources;
  /** Each device's interrupt: an edge line with an irqfd where the VM has them (freed on detach). */
  interrupts: Interrupts;
  cmdline: KernelCmdline;
  eventFds: EventFdFactory;
  /** The VM, for ioeventfd wiring; undefined when none exists (tests): then only the bus path is used. */
  vm: () => Vm | undefined;
  /** Guest memory, resolved when a driver sets DRIVER_OK. */
  memory: () => GuestMemory;
  /** When given, each transport is listed there while attached (snapshot, reset, teardown walk it). */
  devices?: DeviceRegistry;
  /**
   * When given, the windows are contributed to the DSDT as `LNRO0005` nodes (acpi.ts): Debian's
   * kernels lack CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, so the command line alone does not reach them.
   */
  acpi?: AcpiTables;
  logger?: Logger;
}

/** Upper bound on queues per device (virtio-net with many queue pairs stays far below). */
const MAX_QUEUES = 1024;

/** One attached device and what it holds. */
interface Attached {
  transport: VirtioMmioTransport;
  window: MmioAcpiWindow;
  undo: (() => void)[];
}

/**
 * The virtio-mmio transport service: for each VirtioDevice it takes a 4 KiB MMIO
 * window (Resources) and an edge interrupt line (Interrupts, with an irqfd where the
 * VM has them), registers the register window on the bus, wires one ioeventfd
 * per queue (QueueNotify with datamatch = queue index, so kicks never reach the
 * VMM as exits), and announces the device on the kernel command line
 * (`virtio_mmio.device=4K@0x<base>:<gsi>`) and to the firmware tables.
 * Without ioeventfd/irqfd support (a mock hypervisor) QueueNotify is handled on the
 * bus and the Interrupts service pulses the line. Detach frees the window and the line.
 */
export class VirtioMmioHost implements VirtioTransportHost, Disposable {
  /** The transport's name in configs (`transport: mmio`). */
  readonly name = 'mmio';
  private readonly attached = new Map<string, Attached>();
  /** The DSDT nodes of the attached windows, in attach order, read when the tables are built. */
  private readonly acpiNodes?: Disposable;

  constructor(private readonly deps: VirtioMmioHostDeps) {
    this.acpiNodes = deps.acpi?.contribute({
      source: 'virtio-mmio',
      dsdt: () => virtioMmioDsdt([...this.attached.values()].map((a) => a.window)),
    });
  }

  get transports(): readonly VirtioMmioTransport[] {
    return [...this.attached.values()].map((a) => a.transport);
  }

  attachVirtioDevice(device: VirtioDevice, opts: VirtioAttachOptions = {}): VirtioAttachment {
    this.check(device);
    const name = opts.name ?? device.id;
    const undo: (() => void)[] = [];
    const rollback = (): void => {
      for (const u of undo.reverse()) {
        try {
          u();
        } catch {
          /* best effort */
        }
      }
    };
    try {
      const window = this.deps.resources.allocate('mmio32', {
        owner: name,
        size: MMIO_WINDOW_SIZE,
        align: MMIO_WINDOW_SIZE,
      });
      undo.push(() => window.dispose());
      const range = window.range;
      const irq = this.deps.interrupts.legacy({ owner: name, mode: 'edge', irqfd: true });
      undo.push(() => irq.dispose());
      const gsi = irq.gsi;
      // The transport owns these eventfds; they are closed on detach.
      const queueEvents = device.queueMaxSizes.map(() => this.deps.eventFds.create({ nonBlocking: true }));
      undo.push(() => queueEvents.forEach((e) => e.close()));
      const line: InterruptLine = {
        trigger: () => {
          try {
            irq.trigger();
          } catch (err) {
            this.deps.logger?.warn({ err, gsi }, 'virtio-mmio interrupt failed');
          }
        },
      };
      const transport = new VirtioMmioTransport(device, {
        memory: this.deps.memory,
        queueEvents,
        line,
        logger: this.deps.logger,
      });
      this.wireNotifications(range.start.value, queueEvents, undo);
      const reg = this.deps.bus.register('mmio', range, transport, name);
      undo.push(() => reg.dispose());
      const registered = this.deps.devices?.add(transport);
      if (registered) undo.push(() => void registered.dispose());
      const location = `mmio 4K@0x${range.start.value.toString(16)}:${gsi}`;
      this.deps.cmdline.append(`virtio_mmio.device=4K@0x${range.start.value.toString(16)}:${gsi}`);
      this.attached.set(device.id, { transport, window: { base: range.start.value, size: range.length, gsi }, undo });
      this.deps.logger?.info({ device: device.id, location }, 'virtio device attached');
      return {
        deviceId: device.id,
        transport: this.name,
        location,
        interrupt: transport.interrupt,
        dispose: () => this.detach(device.id),
      };
    } catch (err) {
      rollback();
      if (err instanceof VirtioMmioError) throw err;
      throw new VirtioMmioError(
        'Attach',
        `cannot attach virtio device '${device.id}': ${(err as Error)?.message ?? String(err)}`,
        { device: device.id },
        { cause: err },
      );
    }
  }

  /**
   * Detaches one device: resets it, unregisters its window and ioeventfds, closes its eventfds,
   * and frees its MMIO window and interrupt line for reuse.
   */
  detach(id: string): void {
    const a = this.attached.get(id);
    if (!a) return;
    this.attached.delete(id);
    a.transport.reset();
    for (const u of a.undo.reverse()) {
      try {
        u();
      } catch (err) {
        this.deps.logger?.warn({ err, device: id }, 'virtio-mmio detach step failed');
      }
    }
  }

  dispose(): void {
    for (const id of [...this.attached.keys()]) this.detach(id);
    this.acpiNodes?.dispose();
  }

  private check(device: VirtioDevice): void {
    const bad = (why: string): never => {
      throw new VirtioMmioError('InvalidDevice', `virtio device '${device.id}' ${why}`, { device: device.id });
    };
    if (this.attached.has(device.id)) bad('is already attached');
    if ((device.deviceFeatures & VIRTIO_F_VERSION_1) === 0n)
      bad('does not offer VIRTIO_F_VERSION_1 (virtio-mmio here is modern only)');
    if (device.deviceFeatures < 0n || device.deviceFeatures >= 1n << 64n) bad('offers features outside 64 bits');
    const n = device.queueMaxSizes.length;
    if (n === 0 || n > MAX_QUEUES) bad(`has ${n} queues (1..${MAX_QUEUES})`);
    device.queueMaxSizes.forEach((s, i) => {
      if (!isPowerOfTwo(s) || s > MAX_QUEUE_SIZE)
        bad(`queue ${i} maximum size ${s} is not a power of two up to ${MAX_QUEUE_SIZE}`);
    });
    if (
      device.configSize !== undefined &&
      (!Number.isInteger(device.configSize) || device.configSize < 0 || device.configSize > 0xf00)
    )
      bad(`config size ${device.configSize} does not fit the window`);
  }

  private vm(): Vm | undefined {
    try {
      return this.deps.vm();
    } catch {
      return undefined;
    }
  }

  /** One ioeventfd per queue at QueueNotify with datamatch = queue index; a failure leaves the bus path. */
  private wireNotifications(base: bigint, events: EventFd[], undo: (() => void)[]): void {
    const vm = this.vm();
    if (!vm?.capabilities.ioeventfd) return;
    events.forEach((ev, i) => {
      const at: IoEventRegistration = {
        space: 'mmio',
        address: base + BigInt(Reg.QueueNotify),
        length: 4,
        datamatch: BigInt(i),
      };
      try {
        vm.registerIoeventfd(ev, at);
        undo.push(() => vm.unregisterIoeventfd(ev, at));
      } catch (err) {
        this.deps.logger?.warn({ err, queue: i }, 'ioeventfd registration failed; QueueNotify will exit to the VMM');
      }
    });
  }
}
