/**
 * A VM built while another process still runs the same guest: a live migration's destination assembles its VM
 * before the source stops, so that only loading the state and starting the vCPUs fall in the downtime. Until the
 * source lets go, host resources it holds (an image's lock, a listening socket's path) are not free. A plugin asks
 * `incomingVm(ctx.vm)`: undefined in an ordinary assembly (take everything at once), else it takes such a resource
 * only once `released` resolved, or hands the taking to `defer`, which the destination runs after the Commit, as
 * soon as the source closed it, and before the guest runs again.
 */
export interface IncomingVm {
  /** Resolves once the source let go of its VM (disks closed, sockets gone); never, when the migration fails. */
  readonly released: Promise<void>;
  /**
   * Takes a resource as soon as the source closed it (at the latest once it let go), before the guest runs: `what`
   * names it in errors. A rejection that lasts past `released` fails the destination's start (the source has stopped
   * by then: as a VM that cannot be built after the stop).
   */
  defer(what: string, take: () => Promise<void>): void;
}

/** What the receiving side holds for a VM it builds early: the view plugins see, and the deferred takes. */
export interface IncomingGate extends IncomingVm {
  /** How many takes plugins deferred so far (the source must let go before the destination can start). */
  readonly deferred: number;
  /**
   * Runs every deferred take in the order they came, each as soon as it succeeds: tried at once and again every
   * RETAKE_MS while the source lets go (a disk's lock is free once the source closed it, before its VM's teardown
   * ends); once `released` resolved, a failing take rejects, naming it.
   */
  takeAll(): Promise<void>;
}

/** How often a deferred take is tried again while the source still lets go of its VM. */
const RETAKE_MS = 10;

/** Incoming VMs by their plan's config object (the `ctx.vm` every plugin of that VM gets). */
const incoming = new WeakMap<object, IncomingGate>();

/** Marks the VM of `config` (its plan's config object) as built before its source let go, at `released`. */
export function markIncoming(config: object, released: Promise<void>): IncomingGate {
  const takes: { what: string; take: () => Promise<void> }[] = [];
  const gate: IncomingGate = {
    released,
    defer: (what, take) => void takes.push({ what, take }),
    get deferred() {
      return takes.length;
    },
    takeAll: async () => {
      let free = false;
      void released.then(() => (free = true));
      for (const t of takes.splice(0)) {
        // as soon as the source closed it (its VM's teardown goes on), not only once the source let go of everything
        for (;;) {
          const last = free;
          try {
            await t.take();
            break;
          } catch (err) {
            if (!last) {
              await Promise.race([released, new Promise((r) => setTimeout(r, RETAKE_MS))]);
              continue;
            }
            throw new Error(`taking ${t.what} after the source let go failed: ${(err as Error)?.message ?? err}`, {
              cause: err,
            });
          }
        }
      }
    },
  };
  incoming.set(config, gate);
  return gate;
}

/** The VM of `config` as incoming (markIncoming), or undefined for an ordinary assembly. */
export const incomingVm = (config: object): IncomingVm | undefined => incoming.get(config);
