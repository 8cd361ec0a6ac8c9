import { VmmError } from '../../core/errors.js';

/** Config, OpenDisk, Format: set-up problems; State: a saved state that does not fit, or saving while busy. */
export type VirtioBlkErrorKind = 'Config' | 'OpenDisk' | 'Format' | 'State';

/** The one error class of the virtio-blk device and plugin (host-side problems: config, disk opening). */
export class VirtioBlkError extends VmmError<VirtioBlkErrorKind> {}
