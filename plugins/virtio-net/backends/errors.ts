import { VmmError } from '../../../core/errors.js';

/** Why a network backend failed (each kind's meaning beside it). */
export type NetBackendErrorKind =
  /** Opening / configuring the backend failed (no /dev/net/tun, no permission, bad fd, bad address). */
  | 'Open'
  /** A read failed (the device counts it and goes on). */
  | 'Recv'
  /** A write failed (the device counts it and goes on). */
  | 'Send'
  /** The backend was closed. */
  | 'Closed';

/** The one error class of the network backends; `errno` is set for failed system calls. */
export class NetBackendError extends VmmError<NetBackendErrorKind> {
  get errno(): number | undefined {
    return this.data.errno as number | undefined;
  }
}
