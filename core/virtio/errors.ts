import { VmmError } from '../errors.js';

/** Kinds of VirtioTransportError. */
export type VirtioTransportErrorKind =
  /** A virtio device plugin runs in a VM without any virtio transport. */
  | 'NoTransport'
  /** The transport a device or the VM config names is not in this VM. */
  | 'UnknownTransport'
  /** Several transports and no name: the device's `transport` or the VM's `virtio.transport` must choose. */
  | 'AmbiguousTransport'
  /** Two transports in one VM carry the same name. */
  | 'DuplicateTransport';

/** Choosing a virtio transport for a device failed: a config error, naming the device and the transports present. */
export class VirtioTransportError extends VmmError<VirtioTransportErrorKind> {}
