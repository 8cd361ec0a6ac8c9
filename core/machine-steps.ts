import { isPausable, type DeviceRegistry } from './device/device.js';
import type { VcpuRunner } from './hypervisor/hypervisor.js';
import type { StopReason, VmLifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';

/** What the arch-neutral steps of a Machine act on (each arch's machine keeps its own state field). */
export interface MachineParts {
  /** The vCPU runner, once the machine created it. */
  runner?: VcpuRunner;
  devices: DeviceRegistry;
  lifecycle: VmLifecycle;
  logger: Logger;
}

/** Machine.pause(): holds the vCPUs, then the pausable devices; the VM is 'paused' and says so. */
export async function pauseParts(p: MachineParts): Promise<void> {
  await p.runner?.pause();
  for (const dev of p.devices.all()) if (isPausable(dev)) await dev.pause();
  p.lifecycle.state = 'paused';
  p.lifecycle.emit('paused');
}

/** Machine.resume(): resumes the pausable devices, then the vCPUs; the VM is 'started' and says 'resumed'. */
export async function resumeParts(p: MachineParts): Promise<void> {
  for (const dev of p.devices.all()) if (isPausable(dev)) await dev.resume();
  await p.runner?.resume();
  p.lifecycle.state = 'started';
  p.lifecycle.emit('resumed');
}

/**
 * The end of Machine.stop(): stops the vCPUs, destroys the devices in reverse order, marks the VM 'stopped',
 * emits 'stopped' and logs 'machine stopped'. Never throws: a failing step is logged and the rest still runs.
 */
export async function teardownParts(p: MachineParts, reason: StopReason): Promise<void> {
  try {
    await p.runner?.stop();
  } catch (err) {
    p.logger.warn({ err }, 'stopping the vCPUs failed');
  }
  for (const dev of [...p.devices.all()].reverse()) {
    try {
      await dev.destroy?.();
    } catch (err) {
      p.logger.warn({ err, device: dev.id }, 'device destroy failed');
    }
  }
  p.lifecycle.state = 'stopped';
  try {
    p.lifecycle.emit('stopped', reason);
  } catch (err) {
    p.logger.warn({ err }, 'a stopped listener threw');
  }
  p.logger.info({ reason: reason.kind }, 'machine stopped');
}
