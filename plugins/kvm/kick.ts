/**
 * Kicking a vCPU thread out of KVM_RUN: set kvm_run.immediate_exit (covers the
 * window before the thread enters KVM_RUN) and send SIGUSR2 to that thread with
 * tgkill (KVM_RUN then returns EINTR). SIGUSR2's default action kills the process,
 * so a no-op handler must be installed on the main thread first (signals are
 * process-wide; Node only lets the main thread install handlers). SIGUSR1 is
 * Node's inspector signal, hence SIGUSR2.
 */
import { isMainThread } from 'node:worker_threads';
import { c } from '../../core/native/libc.js';

/** The signal number that kicks a vCPU thread out of KVM_RUN (SIGUSR2 on x86-64 Linux). */
export const KICK_SIGNAL = 12; // SIGUSR2 on x86_64 Linux
const noop = (): void => {};
let installed = false;

/** Installs the process-wide no-op SIGUSR2 handler (main thread only; idempotent). */
export function ensureKickHandler(): void {
  if (installed || !isMainThread) return;
  process.on('SIGUSR2', noop);
  installed = true;
}

/** True once ensureKickHandler installed the handler; without it a kick would kill the process, so callers skip it. */
export function kickHandlerInstalled(): boolean {
  return installed;
}

/** Sends the kick signal to thread `tid` of this process; a thread that is gone is ignored. */
export function signalThread(tid: number): void {
  if (tid > 0) c.tgkill(Number(c.getpid()), tid, KICK_SIGNAL);
}
