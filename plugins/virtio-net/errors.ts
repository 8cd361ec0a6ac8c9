import { VmmError } from '../../core/errors.js';

/** Why the device failed on the host side: a bad config, a backend that could not be set up, a bad saved state. */
export type VirtioNetErrorKind = 'Config' | 'Backend' | 'State';

/** The one error class of the virtio-net device and plugin (host-side problems: config, backend setup, state). */
export class VirtioNetError extends VmmError<VirtioNetErrorKind> {}
