import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokens } from '../../core/tokens.js';
import type { KvmVm } from '../../plugins/kvm/vm.js';
import { x86Vcpu } from '../../plugins/x86/hypervisor/extension.js';
import { Msr } from '../../plugins/x86/cpu/msrs.js';
import { silentLogger } from '../../core/vmm/logger.js';
import { MigrationError, pauseVm, resumeVm, restoreVm, snapshotVm } from '../../plugins/migration/index.js';
import { runRestored } from '../../plugins/migration/run-restored.js';
import { tinyScope, COUNTER, DATA, memoryOf, until } from './tiny-guest.js';

describe('migration: pause, snapshot and restore a running VM on host KVM (kvm tier)', function () {
  this.timeout(120_000);
  const t = tinyScope('mig-kvm');
  const start = t.start;

  it('pauses (the guest stops counting) and resumes (it counts on)', async () => {
    const vm = await start();
    const mem = memoryOf(vm);
    await until(() => mem.readU32(COUNTER) > 0, 'the guest to count');
    await pauseVm(vm);
    const held = mem.readU32(COUNTER);
    await new Promise((r) => setTimeout(r, 50));
    expect(mem.readU32(COUNTER), 'paused: no guest instruction runs').to.equal(held);
    expect(vm.lifecycle.state).to.equal('paused');
    await resumeVm(vm);
    await until(() => mem.readU32(COUNTER) > held, 'the guest to count again');
  });

  it('snapshots into a sparse directory and restores into a second VM that continues from the saved count', async () => {
    const a = await start();
    const memA = memoryOf(a);
    await until(() => memA.readU32(COUNTER) > 1000, 'the guest to count');
    memA.writeU32(DATA, 0xfeedf00d); // a page of data elsewhere
    const snap = path.join(t.dir, 'snap1');
    const r = await snapshotVm(a, snap);
    expect(a.lifecycle.state, 'the source runs on').to.equal('started');
    const saved = fs.readFileSync(path.join(snap, 'memory.bin')).readUInt32LE(Number(COUNTER.value));
    expect(saved).to.be.greaterThan(1000);
    expect(r.memoryBytes).to.equal(64 << 20);
    expect(r.writtenBytes, 'zero pages are not written').to.be.lessThan(1 << 20);
    const st = fs.statSync(path.join(snap, 'memory.bin'));
    expect(st.size).to.equal(64 << 20);
    expect(st.blocks * 512, 'the memory file is sparse').to.be.lessThan(2 << 20);

    const b = await restoreVm(snap, { logger: silentLogger() });
    t.track(b);
    const memB = memoryOf(b);
    expect(memB.readU32(COUNTER), 'restored memory holds the saved count').to.equal(saved);
    expect(memB.readU32(DATA)).to.equal(0xfeedf00d);
    await b.machine!.start();
    await until(() => memB.readU32(COUNTER) > saved + 100, 'the restored guest to count on');
    expect(
      fs.readFileSync(path.join(snap, 'memory.bin')).readUInt32LE(Number(COUNTER.value)),
      'the file is unchanged',
    ).to.equal(saved);
  });

  it('restores special registers whose CR4 bits need the CPUID the boot set (OSXSAVE)', async () => {
    const a = await start();
    await until(() => memoryOf(a).readU32(COUNTER) > 0, 'the guest to count');
    await pauseVm(a);
    const v = x86Vcpu((a.container.resolve(Tokens.Vm.token) as KvmVm).vcpuList()[0]!);
    v.setSregs({ ...v.getSregs(), cr4: v.getSregs().cr4 | (1n << 18n) }); // CR4.OSXSAVE, as Linux sets it
    const snap = path.join(t.dir, 'snap-cr4');
    await snapshotVm(a, snap);
    const b = await restoreVm(snap, { logger: silentLogger() });
    t.track(b);
    const vb = x86Vcpu((b.container.resolve(Tokens.Vm.token) as KvmVm).vcpuList()[0]!);
    expect(vb.getSregs().cr4 & (1n << 18n)).to.equal(1n << 18n);
    await b.machine!.start();
    const at = memoryOf(b).readU32(COUNTER);
    await until(() => memoryOf(b).readU32(COUNTER) > at + 100, 'the restored guest to count on');
  });

  it('restores the paravirtual MSRs a Linux guest enables (kvmclock, steal time, PV EOI, async PF) and TSC_AUX', async () => {
    const a = await start();
    await until(() => memoryOf(a).readU32(COUNTER) > 0, 'the guest to count');
    await pauseVm(a);
    const vcpuOf = (vm: typeof a) => x86Vcpu((vm.container.resolve(Tokens.Vm.token) as KvmVm).vcpuList()[0]!);
    const base = DATA.value;
    const set = [
      { index: Msr.KVM_SYSTEM_TIME_NEW, data: (base + 0x1000n) | 1n },
      { index: Msr.KVM_STEAL_TIME, data: (base + 0x2000n) | 1n },
      { index: Msr.KVM_PV_EOI_EN, data: (base + 0x3000n) | 1n },
      { index: Msr.KVM_ASYNC_PF_INT, data: 0xf3n },
      { index: Msr.KVM_ASYNC_PF_EN, data: (base + 0x4000n) | 1n | 8n }, // enabled, delivered as an interrupt
      { index: Msr.TSC_AUX, data: 7n },
    ];
    vcpuOf(a).setMsrs(set);
    const snap = path.join(t.dir, 'snap-pv-msrs');
    await snapshotVm(a, snap);
    const b = t.track(await restoreVm(snap, { logger: silentLogger() }));
    expect(vcpuOf(b).getMsrs(set.map((m) => m.index))).to.deep.equal(set);
    await b.machine!.start();
    const at = memoryOf(b).readU32(COUNTER);
    await until(() => memoryOf(b).readU32(COUNTER) > at + 100, 'the restored guest to count on');
  });

  it('runRestored hashes the memory while it assembles; a flipped page is refused before the state loads', async () => {
    const a = await start();
    const memA = memoryOf(a);
    await until(() => memA.readU32(COUNTER) > 1000, 'the guest to count');
    memA.writeU32(DATA, 0xfeedf00d);
    const snap = path.join(t.dir, 'snap-flip');
    await snapshotVm(a, snap);
    const file = path.join(snap, 'memory.bin');
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Uint8Array.of(0x0d ^ 0xff), 0, 1, Number(DATA.value)); // the page the guest will read
    fs.closeSync(fd);
    let ran = false;
    const err = await runRestored(snap, {
      verifyInBackground: true,
      signals: [],
      logger: silentLogger(),
      onStarted: (vm) => ((ran = true), void vm.machine!.stop({ kind: 'api' })),
    }).catch((e: unknown) => e);
    expect(ran, 'no vCPU ran on the corrupt memory').to.equal(false);
    expect(err).to.be.instanceOf(MigrationError);
    expect((err as Error).message).to.match(/memory\.bin: checksum mismatch \(the file was changed or damaged\)$/);
  });
});
