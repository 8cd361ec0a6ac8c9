import { expect } from 'chai';
import type { Device, DeviceRegistry } from './device/device.js';
import type { VcpuRunner } from './hypervisor/hypervisor.js';
import { VmLifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';
import { pauseParts, resumeParts, teardownParts, type MachineParts } from './machine-steps.js';

/** Parts whose every step appends to `log` (runner, two devices, a failing one, the logger, lifecycle events). */
function recordingParts(): { parts: MachineParts; log: string[] } {
  const log: string[] = [];
  const device = (id: string, fail = false): Device =>
    ({
      id,
      pause: async () => void log.push(`pause ${id}`),
      resume: async () => void log.push(`resume ${id}`),
      destroy: async () => {
        log.push(`destroy ${id}`);
        if (fail) throw new Error('boom');
      },
    }) as unknown as Device;
  const devices = [device('a'), device('b', true), device('c')];
  const registry = { all: () => devices } as unknown as DeviceRegistry;
  const runner = {
    pause: async () => void log.push('runner pause'),
    resume: async () => void log.push('runner resume'),
    stop: async () => {
      log.push('runner stop');
      throw new Error('stuck');
    },
  } as unknown as VcpuRunner;
  const logger = {
    warn: (_o: object, m?: string) => void log.push(`warn ${m}`),
    info: (o: object, m?: string) => void log.push(`info ${m} ${JSON.stringify(o)}`),
  } as unknown as Logger;
  const lifecycle = new VmLifecycle();
  for (const e of ['paused', 'resumed', 'stopped'] as const)
    lifecycle.on(e, () => void log.push(`event ${e} (${lifecycle.state})`));
  return { parts: { runner, devices: registry, lifecycle, logger }, log };
}

describe('core/machine-steps: the arch-neutral pause, resume and stop of a Machine', () => {
  it('pauses the vCPUs before the devices and resumes the devices before the vCPUs', async () => {
    const { parts, log } = recordingParts();
    await pauseParts(parts);
    expect(parts.lifecycle.state).to.equal('paused');
    await resumeParts(parts);
    expect(parts.lifecycle.state).to.equal('started');
    expect(log).to.deep.equal([
      'runner pause',
      'pause a',
      'pause b',
      'pause c',
      'event paused (paused)',
      'resume a',
      'resume b',
      'resume c',
      'runner resume',
      'event resumed (started)',
    ]);
  });

  it('tears down in reverse device order, past failing steps, then says stopped', async () => {
    const { parts, log } = recordingParts();
    await teardownParts(parts, { kind: 'poweroff' });
    expect(log).to.deep.equal([
      'runner stop',
      'warn stopping the vCPUs failed',
      'destroy c',
      'destroy b',
      'warn device destroy failed',
      'destroy a',
      'event stopped (stopped)',
      'info machine stopped {"reason":"poweroff"}',
    ]);
  });

  it('works before the runner exists (a machine that failed to start)', async () => {
    const { parts, log } = recordingParts();
    await teardownParts({ ...parts, runner: undefined }, { kind: 'api' });
    expect(log[0]).to.equal('destroy c');
    expect(parts.lifecycle.state).to.equal('stopped');
  });
});
