import { expect } from 'chai';
import { z } from 'zod';
import type { VcpuState } from '../../core/hypervisor/vcpu-state.js';
import { OrderedStateRegistry } from '../../core/state/registry.js';
import { defineState, type Snapshottable } from '../../core/state/snapshottable.js';
import { VcpuSnapshot } from '../../core/state/vcpu-snapshot.js';
import { warmStates, warmVcpuSaves } from './warm.js';

const CounterSpec = defineState({ name: 'counter', version: 1, schema: z.strictObject({ n: z.number() }) });

/** A part that counts what the warm-up asked of it. */
function part(id: string, opts: { refuse?: boolean } = {}) {
  const calls = { save: 0, check: 0, load: 0 };
  const s: Snapshottable<{ n: number }> = {
    id,
    stateSpec: CounterSpec,
    saveState: () => {
      calls.save++;
      if (opts.refuse) throw new Error('requests in flight');
      return { n: 7 };
    },
    checkState: () => void calls.check++,
    loadState: () => void calls.load++,
  };
  return { s, calls };
}

/** A vCPU whose state is read and written through its fd (here: recorded). */
function vcpu() {
  const calls = { save: 0, restored: [] as unknown[] };
  const state: VcpuState = { arch: 'x86_64', version: 1, payload: { rip: 0xfff0n, lapic: new Uint8Array(8) } };
  const v = new VcpuSnapshot({
    index: 0,
    saveState: () => (calls.save++, state),
    restoreState: (s: unknown) => void calls.restored.push(s),
  });
  return { v, calls };
}

describe('migration: warming the state code before the stop (warm.ts)', () => {
  it('a running source: every part saved and encoded but the vCPU, whose encoder alone runs; nothing loaded', () => {
    const reg = new OrderedStateRegistry();
    const dev = part('serial');
    const busy = part('disk0', { refuse: true });
    const cpu = vcpu();
    reg.add(cpu.v, 'vcpu');
    reg.add(dev.s);
    reg.add(busy.s);
    const w = warmStates(reg, 'running');
    expect(w.saved).to.deep.equal(['vcpu0 (encoder)', 'serial']);
    expect(w.failed).to.deep.equal(['disk0']);
    expect(cpu.calls.save, 'a running vCPU is never read').to.equal(0);
    expect(cpu.calls.restored).to.deep.equal([]);
    expect(dev.calls).to.deep.equal({ save: 1, check: 0, load: 0 });
  });

  it("a destination's built VM: every part saved, decoded and checked; each vCPU gets its own state back", () => {
    const reg = new OrderedStateRegistry();
    const dev = part('serial');
    const cpu = vcpu();
    reg.add(cpu.v, 'vcpu');
    reg.add(dev.s);
    const w = warmStates(reg, 'built');
    expect(w).to.deep.equal({
      saved: ['vcpu0', 'serial'],
      checked: ['vcpu0', 'serial'],
      loaded: ['vcpu0'],
      failed: [],
    });
    expect(dev.calls, 'a device is checked, never loaded').to.deep.equal({ save: 1, check: 1, load: 0 });
    expect(cpu.calls.save).to.equal(1);
    expect(cpu.calls.restored).to.have.length(1);
    expect(cpu.calls.restored[0]).to.deep.include({ arch: 'x86_64', version: 1 });
  });

  it('never throws: a registry that cannot list its parts warms nothing', () => {
    const reg = new OrderedStateRegistry();
    reg.add(part('same').s);
    reg.add(part('same').s);
    expect(warmStates(reg, 'built')).to.deep.equal({ saved: [], checked: [], loaded: [], failed: [] });
  });
});

describe('migration: warming the source vCPU saves with one short pause (warmVcpuSaves)', () => {
  /** A machine that records pause/resume and whether a vCPU save ran while paused. */
  function machine() {
    const log: string[] = [];
    return { log, pause: async () => void log.push('pause'), resume: async () => void log.push('resume') };
  }

  it('pauses once, saves every vCPU (and nothing else) while paused, resumes', async () => {
    const reg = new OrderedStateRegistry();
    const dev = part('serial');
    const a = vcpu();
    reg.add(a.v, 'vcpu');
    reg.add(dev.s);
    const m = machine();
    const b = new VcpuSnapshot({
      index: 1,
      saveState: () => (m.log.push('save vcpu1'), { arch: 'x86_64', version: 1, payload: {} }),
      restoreState: () => {},
    });
    reg.add(b, 'vcpu');
    const w = await warmVcpuSaves(m, reg);
    expect(w.saved).to.deep.equal(['vcpu0', 'vcpu1']);
    expect(a.calls.save).to.equal(1);
    expect(dev.calls.save, 'devices are warmed elsewhere, running').to.equal(0);
    expect(m.log).to.deep.equal(['pause', 'save vcpu1', 'resume']);
  });

  it('a vCPU that cannot save is listed, and the machine still resumes; a machine without vCPUs is not paused', async () => {
    const reg = new OrderedStateRegistry();
    const bad = new VcpuSnapshot({
      index: 0,
      saveState: () => {
        throw new Error('EINTR');
      },
      restoreState: () => {},
    });
    reg.add(bad, 'vcpu');
    const m = machine();
    const w = await warmVcpuSaves(m, reg);
    expect(w.failed).to.deep.equal(['vcpu0']);
    expect(m.log).to.deep.equal(['pause', 'resume']);
    const none = machine();
    await warmVcpuSaves(none, new OrderedStateRegistry());
    expect(none.log).to.deep.equal([]);
  });
});
