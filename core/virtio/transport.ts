import type { Disposable } from '../bus/bus.js';
import { VirtioTransportError } from './errors.js';
import type { VirtioDevice, VirtioInterrupt } from './virtio.js';
import type { PlanContext, PluginProblem } from '../plugin/plugin.js';

/** Options a device plugin may pass when attaching; every field is optional. */
export interface VirtioAttachOptions {
  /** Name used on the bus and in logs; defaults to the device's id. */
  readonly name?: string;
}

/**
 * What a transport did for one device. Disposing it detaches the device: the
 * transport unregisters its bus window, ioeventfds and irqfd and resets the device.
 */
export interface VirtioAttachment extends Disposable {
  /** The device's id (VirtioDevice.id). */
  readonly deviceId: string;
  /** The transport's name (VirtioTransportHost.name), e.g. 'mmio' or 'pci'. */
  readonly transport: string;
  /** Human-readable location, e.g. 'mmio 4K@0xd0000000:5'. */
  readonly location: string;
  /**
   * Interrupts towards the driver, usable at any time (e.g. a config change of a
   * net device's link state before or after activation).
   */
  readonly interrupt: VirtioInterrupt;
}

/**
 * A virtio transport as device plugins need it (virtio-blk, virtio-net, ...):
 * they hand over a transport-independent VirtioDevice and the transport
 * (mmio now, pci later) does the rest: address window, interrupt line, guest
 * announcement (kernel command line / PCI enumeration), queue notifications,
 * device status and feature negotiation, and calls VirtioDevice.activate() once
 * the driver set DRIVER_OK.
 *
 * Several transports may live in one VM: `VirtioTransport` is a `multiple` token, each
 * transport plugin registers one host under its own `name`. A device plugin resolves
 * them all (`@injectAll(VIRTIO_TRANSPORT)`, manifest: requires "VirtioTransport") and
 * picks one with selectVirtioTransport(). attachVirtioDevice throws a VmmError subclass
 * when the device description is invalid (e.g. no VIRTIO_F_VERSION_1 offered, a queue
 * size not a power of two).
 */
export interface VirtioTransportHost {
  /** The transport's name, as configs write it: 'mmio', 'pci'. Unique in a VM. */
  readonly name: string;
  /** Attaches one device; disposing the attachment detaches it. */
  attachVirtioDevice(device: VirtioDevice, opts?: VirtioAttachOptions): VirtioAttachment;
}

/** Which transport a device asked for: its own config's `transport`, else the VM's `virtio.transport`. */
export interface VirtioTransportChoice {
  /** The device's `transport` config key. */
  readonly device?: string;
  /** The VM config's `virtio.transport` (the default for every virtio device). */
  readonly vmDefault?: string;
}

/**
 * Picks the transport a device attaches to: the one its config names, else the one the VM
 * config names, else the only transport of the VM. `who` names the device in errors (its
 * plugin instance). Throws VirtioTransportError when the name is unknown in this VM
 * (listing the transports present), when there is no transport, when several are present
 * and nothing chooses, or when two transports carry the same name.
 */
export function selectVirtioTransport(
  transports: readonly VirtioTransportHost[],
  choice: VirtioTransportChoice,
  who: string,
): VirtioTransportHost {
  return transports[
    selectVirtioTransportName(
      transports.map((t) => t.name),
      choice,
      who,
    )
  ];
}

/**
 * The rule of selectVirtioTransport over transport names alone (checked before anything is built): the index of the
 * chosen name in `names`; throws the same VirtioTransportError.
 */
export function selectVirtioTransportName(
  names: readonly string[],
  choice: VirtioTransportChoice,
  who: string,
): number {
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) {
    throw new VirtioTransportError('DuplicateTransport', `${who}: two virtio transports are named '${dup}'`, {
      device: who,
      transport: dup,
    });
  }
  const present = names.length ? names.join(', ') : 'none';
  if (names.length === 0) {
    throw new VirtioTransportError(
      'NoTransport',
      `${who}: this VM has no virtio transport; list a transport plugin such as virtio-mmio`,
      { device: who },
    );
  }
  const wanted = choice.device ?? choice.vmDefault;
  if (wanted === undefined) {
    if (names.length === 1) return 0;
    throw new VirtioTransportError(
      'AmbiguousTransport',
      `${who}: this VM has several virtio transports (${present}); choose one with the device's ` +
        `'transport' or the VM's 'virtio.transport'`,
      { device: who, transports: names },
    );
  }
  const found = names.indexOf(wanted);
  if (found >= 0) return found;
  const from = choice.device !== undefined ? `its 'transport'` : `the VM's 'virtio.transport'`;
  throw new VirtioTransportError(
    'UnknownTransport',
    `${who}: unknown virtio transport '${wanted}' (from ${from}); this VM has: ${present}`,
    { device: who, transport: wanted, transports: names },
  );
}

/**
 * A virtio device plugin's validate (PluginModule.validate) for its transport choice: the problem selectVirtioTransport
 * would raise at assembly, found before anything starts. Nothing is said when a listed transport does not declare
 * its names (PluginModule.names) or none is listed (the plugin ordering reports that).
 */
export function virtioTransportProblems(config: { transport?: string }, vm: PlanContext): PluginProblem[] {
  const names = vm.names(VIRTIO_TRANSPORT_TOKEN_NAME);
  if (!names || names.length === 0) return [];
  const vmDefault = vm.vm.virtio?.transport;
  try {
    selectVirtioTransportName(names, { device: config.transport, vmDefault }, vm.instance);
    return [];
  } catch (err) {
    const message = (err as Error).message;
    if (config.transport !== undefined) return [{ key: ['transport'], message }];
    return vmDefault !== undefined ? [{ vmKey: ['virtio', 'transport'], message }] : [{ message }];
  }
}

/** The manifest name of the virtio transport token (Tokens.VirtioTransport). */
const VIRTIO_TRANSPORT_TOKEN_NAME = 'VirtioTransport';
