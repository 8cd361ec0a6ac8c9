import { EventEmitter } from 'eventemitter3';

/** Where a VM is in its life: assembled, running, paused, or stopped for good. */
export type VmState = 'created' | 'started' | 'paused' | 'stopped';

/** How a VM ended, mapped to the VMM's exit code by the host. */
export type StopReason =
  | { kind: 'poweroff' }
  | { kind: 'reset' }
  | { kind: 'triple-fault' }
  | { kind: 'signal'; signal: string }
  | { kind: 'api' }
  | { kind: 'error'; error: unknown };

/** The lifecycle's events and their arguments: notifications only (cleanup is a returned Disposable). */
export interface VmLifecycleEvents {
  created: () => void;
  started: () => void;
  paused: () => void;
  resumed: () => void;
  stopped: (reason: StopReason) => void;
  error: (err: unknown, where: string) => void;
  /** A guest asked to stop or restart (poweroff, reboot, triple fault); the host decides what happens. */
  'guest-request': (reason: StopReason) => void;
}

/**
 * Lifecycle events of one VM: notifications (logging, statistics, the API). Cleanup never hangs on them:
 * what a plugin must undo at VM end is a Disposable it returns from register/attach (core/vmm/assemble.ts
 * undoes them in reverse order once the machine stopped).
 */
export class VmLifecycle extends EventEmitter<VmLifecycleEvents> {
  state: VmState = 'created';
}
