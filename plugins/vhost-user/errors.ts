import { VmmError } from '../../core/errors.js';

/** Why the vhost-user front end failed (each kind's meaning beside it). */
export type VhostUserErrorKind =
  /** Connecting to the back end's socket failed (absent, refused). */
  | 'Connect'
  /** The back end closed the connection or a send failed: requests in flight fail with this. */
  | 'Disconnected'
  /** The back end answered something the protocol does not allow (wrong reply, short payload). */
  | 'Protocol'
  /** The back end lacks something the device needs (a feature, a protocol feature, queues). */
  | 'Unsupported'
  /** Guest memory the back end cannot map (not memfd or a shared file), or too many regions. */
  | 'Memory'
  /** A plugin config the device cannot use. */
  | 'Config';

/** The one error class of the vhost-user front end and its device plugins. */
export class VhostUserError extends VmmError<VhostUserErrorKind> {}
