import { VmmError } from '../../core/errors.js';

export type VirtioBlkErrorKind = 'Config' | 'OpenDisk' | 'Format';

/** The one error class of the virtio-blk device and plugin (host-side problems: config, disk opening). */
export class VirtioBlkError extends VmmError<VirtioBlkErrorKind> {}
