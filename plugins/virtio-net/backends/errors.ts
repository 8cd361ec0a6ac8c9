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

/**
 * The checks of a backend with one queue pair before a send or receive: refuses a closed backend and any
 * queue but 0, naming the backend.
 */
export function checkSingleQueue(closed: boolean, description: string, queue: number, kind: 'Send' | 'Recv'): void {
  if (closed) throw new NetBackendError('Closed', `${description} is closed`, {});
  if (queue !== 0) throw new NetBackendError(kind, `${description} has one queue pair, not ${queue + 1}`, { queue });
}
