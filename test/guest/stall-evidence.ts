/**
 * What a linux test records about a `bin/vmm.js run` child that stopped making progress, before it is gone: enough to
 * tell a guest spinning in KVM_RUN (a vCPU thread running, its CPU ticks growing: the nested L1's business) from a
 * guest waiting for something the VMM never delivers (every thread asleep) or a VMM whose event loop is stuck (the
 * Node report's JavaScript stack), and the VMM's own device statistics, which it logs when it stops on SIGTERM
 * (the UART's IER, pending THRE interrupt and line level; the exit counts per kind; the virtio devices' counters).
 */
import { threadStates } from '../runner/watchdog.js';
import type { VmmProcess } from './guest-vm.js';

/** Gap between the two thread samples, and how long the VMM gets to stop on SIGTERM before SIGKILL. */
const SAMPLE_GAP_MS = 3_000;
const STOP_MS = 15_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Samples the VMM's threads twice SAMPLE_GAP_MS apart, asks for its Node report (vmm.diagnose), then sends SIGTERM
 * twice (the second stops the VM at once even where the first pressed a power button) and keeps what the VMM logs
 * until it ends; SIGKILL if it has not ended STOP_MS later. The VMM ends with 143 or SIGKILL, never 0.
 */
export async function stallEvidence(vmm: VmmProcess): Promise<string> {
  const first = threadStates(vmm.child.pid!);
  await sleep(SAMPLE_GAP_MS);
  const diag = await vmm.diagnose();
  let stopLog = '';
  const keep = (d: Buffer): void => void (stopLog += d.toString('latin1'));
  vmm.child.stdout?.on('data', keep);
  vmm.child.stderr?.on('data', keep);
  const ended = vmm.ended.then(() => true);
  vmm.child.kill('SIGTERM');
  await Promise.race([ended, sleep(1_000)]);
  vmm.child.kill('SIGTERM');
  const stopped = await Promise.race([ended, sleep(STOP_MS).then(() => false)]);
  if (!stopped) vmm.child.kill('SIGKILL');
  return (
    `threads ${SAMPLE_GAP_MS / 1000} s before the report (compare the CPU ticks):\n${first}${diag}` +
    `the VMM's log after SIGTERM${stopped ? '' : ` (it did not end within ${STOP_MS / 1000} s: SIGKILL)`}:\n` +
    `${stopLog.slice(-8000) || '(nothing)\n'}`
  );
}
