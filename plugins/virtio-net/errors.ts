import { VmmError } from '../../core/errors.js';

export type VirtioNetErrorKind = 'Config' | 'Backend' | 'State';

/** The one error class of the virtio-net device and plugin (host-side problems: config, backend setup, state). */
export class VirtioNetError extends VmmError<VirtioNetErrorKind> {}
