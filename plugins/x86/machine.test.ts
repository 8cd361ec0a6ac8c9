import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmConfigSchema } from '../../core/config/schema.js';
import type { Device, DeviceRegistry } from '../../core/device/device.js';
import type { VcpuExit, VcpuRunner, VcpuRunState } from '../../core/hypervisor/hypervisor.js';
import { VmLifecycle, type StopReason } from '../../core/lifecycle.js';
import { CmdlineBuilder } from '../../core/platform/cmdline-builder.js';
import { X86Layout } from './layout.js';
import type { MockVm } from '../../core/testing/mock-hypervisor.js';
import { mockX86, mockX86Hypervisor } from './hypervisor/mock.js';
import { testGuestMemory } from '../../core/testing/test-memory.js';
import { silentLogger } from '../../core/testing/index.js';
import type { Logger } from '../../core/logger.js';
import { LAPIC_LVT_LINT0, LAPIC_LVT_LINT1 } from './cpu/lapic.js';
import { BootFileError } from '../../core/host/boot-files.js';
import { X86BootError } from './errors.js';
import { X86Machine, isPoweredOffByHalt, stopReasonForExit } from './machine.js';
import { fakeBzImage, fakeElfKernel } from './testing.js';
import { GuestAddress } from '../../core/address.js';
import type { AcpiTables } from '../../core/acpi/tables.js';
import { AcpiTableSet } from '../acpi/table-set.js';
import * as aml from '../acpi/aml/index.js';
import { madtEntries, readTables } from '../acpi/testing.js';
import { ACPI_END, ACPI_START, MADT_TYPE, x86AcpiContribution } from './platform/acpi.js';

class FakeRunner implements VcpuRunner {
  readonly stats = { byKind: {} };
  handler?: (vcpu: number, exit: VcpuExit) => 'continue' | 'stop' | void;
  starts = 0;
  stops = 0;
  states: VcpuRunState[] = [];
  constructor(private readonly log: string[]) {}
  setExitHandler(h: typeof this.handler): void {
    this.handler = h;
  }
  prewarm(vcpus: number): void {
    this.log.push(`runner.prewarm ${vcpus}`);
  }
  async start(): Promise<void> {
    this.starts++;
    this.log.push('runner.start');
  }
  async pause(): Promise<void> {}
  async resume(): Promise<void> {}
  async stop(): Promise<void> {
    this.stops++;
    this.log.push('runner.stop');
  }
  polls = 0;
  async vcpuStates(): Promise<VcpuRunState[]> {
    this.polls++;
    return this.states;
  }
  activity?: () => number[];
}

class RecordingDevice implements Device {
  constructor(
    readonly id: string,
    private readonly log: string[],
  ) {}
  activate(): void {
    this.log.push(`${this.id}.activate`);
  }
  destroy(): void {
    this.log.push(`${this.id}.destroy`);
  }
}

const MiB = 1n << 20n;

/** Waits (event-loop turns, bounded) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond(), what).to.equal(true);
}

describe('X86Machine', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'x86-machine-'));
    writeFileSync(join(dir, 'bzImage'), fakeBzImage());
    writeFileSync(join(dir, 'vmlinux'), fakeElfKernel({ pvhEntry: 0x100_0020n }));
    writeFileSync(join(dir, 'initrd'), new Uint8Array(8192).fill(7));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function setup(
    opts: {
      vcpus?: number;
      kernel?: string;
      onReset?: 'exit' | 'restart';
      haltPollMs?: number;
      logger?: Logger;
      acpi?: AcpiTables;
    } = {},
  ) {
    const log: string[] = [];
    const hv = mockX86Hypervisor();
    const vm = hv.createVm();
    const runner = new FakeRunner(log);
    const device = new RecordingDevice('dev0', log);
    const devices: DeviceRegistry = { add: () => ({ dispose: () => {} }), get: () => device, all: () => [device] };
    const lifecycle = new VmLifecycle();
    const config = VmConfigSchema.parse({
      machine: { vcpus: opts.vcpus ?? 2, memory: '64M', onReset: opts.onReset ?? 'exit' },
      boot: { kernel: 'k', cmdline: 'console=ttyS0' },
    });
    const memory = testGuestMemory([{ start: 0n, size: 64n * MiB }]);
    const machine = new X86Machine({
      config,
      memory,
      vm,
      devices,
      lifecycle,
      logger: opts.logger ?? silentLogger(),
      cmdline: new CmdlineBuilder('console=ttyS0 reboot=k'),
      runner: () => runner,
      boot: { kernel: join(dir, opts.kernel ?? 'bzImage'), initramfs: join(dir, 'initrd'), protocol: 'auto' },
      haltPollMs: opts.haltPollMs ?? 0,
      vcpuCreated: (v) => log.push(`vcpuCreated ${v.index}`),
      acpi: opts.acpi,
    });
    return { hv, vm: vm as MockVm, runner, device, lifecycle, machine, memory, log };
  }

  it('sets the VM up in order and enters a bzImage at startup_64 with rsi = zero page', async () => {
    const { hv, vm, runner, machine, lifecycle, log } = setup();
    let started = false;
    lifecycle.on('started', () => {
      started = true;
    });
    await machine.start();

    const order = hv.calls.filter((c) => c.target === 'vm').map((c) => c.method);
    const firstVcpu = order.indexOf('createVcpu');
    for (const m of ['setIdentityMapAddress', 'setTssAddress']) {
      expect(order.indexOf(m), m).to.be.within(0, firstVcpu - 1);
    }
    // memory slots and the irqchip belong to the hypervisor backend (the kvm plugin), not the machine
    for (const m of ['setMemorySlot', 'createIrqChip']) expect(order, m).to.not.include(m);
    expect(hv.callsTo('vm', 'setTssAddress')[0].args[0]).to.equal(X86Layout.KVM_TSS);
    expect(hv.callsTo('vm', 'setIdentityMapAddress')[0].args[0]).to.equal(X86Layout.KVM_IDENTITY_MAP);

    const [bsp, ap] = vm.vcpus.map(mockX86);
    expect(bsp.regs.rip).to.equal(0x100200n);
    expect(bsp.regs.rsi).to.equal(X86Layout.ZERO_PAGE);
    expect(bsp.regs.rflags).to.equal(2n);
    expect(bsp.sregs.cs).to.include({ selector: 0x10, l: 1, db: 0, present: 1 });
    expect(bsp.sregs.ds).to.include({ selector: 0x18, type: 3 });
    expect(bsp.sregs.cr3).to.equal(X86Layout.PML4);
    expect(bsp.sregs.efer & 0x500n).to.equal(0x500n);
    expect(bsp.sregs.cr0 & 0x8000_0001n).to.equal(0x8000_0001n);
    expect(bsp.mpState).to.equal('runnable');
    expect(ap.mpState).to.equal('uninitialized');
    expect(ap.regs.rip).to.equal(0xfff0n, 'APs keep their reset registers until SIPI');
    for (const v of [bsp, ap]) {
      const dv = new DataView(v.lapic.buffer);
      expect((dv.getUint32(LAPIC_LVT_LINT0, true) >> 8) & 7).to.equal(7, 'LINT0 ExtINT');
      expect((dv.getUint32(LAPIC_LVT_LINT1, true) >> 8) & 7).to.equal(4, 'LINT1 NMI');
      expect(v.fpu).to.include({ fcw: 0x37f, mxcsr: 0x1f80 });
      expect(v.msrs.get(0x1a0)).to.equal(1n);
      expect(v.cpuid.find((e) => e.function === 0x4000_0000)).to.include({ ebx: 0x4b4d564b });
    }
    // the vCPU threads are asked for first, so that their start-up overlaps reading the kernel
    expect(log).to.deep.equal(['runner.prewarm 2', 'vcpuCreated 0', 'vcpuCreated 1', 'dev0.activate', 'runner.start']);
    expect(runner.handler).to.be.a('function');
    expect(started).to.equal(true);
    await machine.stop({ kind: 'api' });
    expect(await machine.stopped).to.deep.equal({ kind: 'api' });
  });

  it('prepareRestore creates the vCPUs and gets their threads ready (runner prewarmed) before start', async () => {
    const { machine, log } = setup({ vcpus: 2 });
    machine.prepareRestore();
    // a migration's destination prepares before the source stops: start() must not spawn the threads in the downtime
    expect(log).to.deep.equal(['vcpuCreated 0', 'vcpuCreated 1', 'runner.prewarm 2']);
    await machine.stop({ kind: 'api' });
    expect(log).to.include('runner.stop');
  });

  it('enters an ELF vmlinux at the PVH entry in 32-bit protected mode with ebx = start info', async () => {
    const { vm, machine } = setup({ kernel: 'vmlinux', vcpus: 1 });
    await machine.start();
    const bsp = mockX86(vm.vcpus[0]);
    expect(bsp.regs.rip).to.equal(0x100_0020n);
    expect(bsp.regs.rbx).to.equal(X86Layout.PVH_INFO);
    expect(bsp.sregs.cs).to.include({ selector: 0x08, db: 1, l: 0, g: 1, limit: 0xffff_ffff });
    expect(bsp.sregs.tr).to.include({ type: 11, present: 1, limit: 0x67 });
    expect(bsp.sregs.cr0).to.equal(0x11n);
    expect(bsp.sregs.efer).to.equal(0n);
    await machine.stop({ kind: 'api' });
  });

  it('ends with triple-fault on a shutdown exit and destroys the devices', async () => {
    const { machine, runner, log } = setup();
    await machine.start();
    expect(
      runner.handler!(0, {
        kind: 'io',
        space: 'pio',
        direction: 'out',
        port: 0x80,
        size: 1,
        count: 1,
        data: new Uint8Array(1),
      }),
    ).to.equal('continue');
    expect(runner.handler!(1, { kind: 'shutdown' })).to.equal('stop');
    expect(await machine.stopped).to.deep.equal({ kind: 'triple-fault' });
    expect(log).to.include.members(['runner.stop', 'dev0.destroy']);
  });

  it("logs the faulting vCPU's registers on a triple fault", async () => {
    const warns: { obj: unknown; msg?: string }[] = [];
    const base = silentLogger();
    const logger: Logger = {
      ...base,
      warn: (obj: unknown, msg?: string) => {
        warns.push({ obj, msg });
      },
      child: () => logger,
    };
    const { vm, machine, runner } = setup({ logger, vcpus: 2 });
    await machine.start();
    const ap = mockX86(vm.vcpus[1]);
    ap.regs.rip = 0x9a0c3n;
    ap.sregs.cr0 = 0x11n;
    expect(runner.handler!(1, { kind: 'shutdown' })).to.equal('stop');
    expect(await machine.stopped).to.deep.equal({ kind: 'triple-fault' });
    const rec = warns.find((w) => w.msg === 'triple fault: the vCPU registers');
    const regs = (rec?.obj as { vcpu: number; regs: Record<string, string> } | undefined) ?? expect.fail('no report');
    expect(regs.vcpu).to.equal(1);
    expect(regs.regs).to.include({ rip: '0x9a0c3', cr0: '0x11' });
    expect(regs.regs).to.have.keys(
      ...['rip', 'rsp', 'rflags', 'cr0', 'cr2', 'cr3', 'cr4', 'efer', 'cs', 'gdt', 'idt', 'apicBase'],
    );
  });

  it('ends on guest requests from devices (i8042 reset) whatever onReset says; runVm restarts', async () => {
    for (const onReset of ['exit', 'restart'] as const) {
      const { machine, lifecycle, runner } = setup({ onReset });
      await machine.start();
      lifecycle.emit('guest-request', { kind: 'reset' });
      expect(await machine.stopped).to.deep.equal({ kind: 'reset' });
      expect(runner.stops).to.equal(1);
    }
  });

  it('treats every vCPU halted with interrupts off as poweroff', async () => {
    const { machine, runner } = setup({ haltPollMs: 5 });
    runner.states = [
      { index: 0, mpState: 'halted', interruptsEnabled: true },
      { index: 1, mpState: 'halted', interruptsEnabled: false },
    ];
    await machine.start();
    await until(() => runner.polls >= 4, 'polled');
    let ended: StopReason | undefined;
    void machine.stopped.then((r) => {
      ended = r;
    });
    await new Promise((r) => setImmediate(r));
    expect(ended, 'idle guest (interrupts on) keeps running').to.equal(undefined);
    runner.states = [
      { index: 0, mpState: 'halted', interruptsEnabled: false },
      { index: 1, mpState: 'halted', interruptsEnabled: false },
    ];
    expect(await machine.stopped).to.deep.equal({ kind: 'poweroff' });
  });

  it('does not kick vCPUs that keep exiting, and asks them once they go quiet', async () => {
    const { machine, runner } = setup({ haltPollMs: 5 });
    let counter = 0;
    let busy = true;
    runner.activity = () => (busy ? [++counter, counter] : [counter, counter]);
    runner.states = [
      { index: 0, mpState: 'halted', interruptsEnabled: false },
      { index: 1, mpState: 'halted', interruptsEnabled: false },
    ];
    await machine.start();
    await until(() => machine.haltPollsSkipped >= 10, 'ticks skipped');
    expect(runner.polls, 'no kick while the vCPUs exit').to.equal(0);
    busy = false;
    expect(await machine.stopped).to.deep.equal({ kind: 'poweroff' });
    expect(runner.polls).to.be.at.least(2);
  });

  it('says where each vCPU was when stopped from outside (a stuck guest), and not on a guest poweroff', async () => {
    const infos: { obj: unknown; msg?: string }[] = [];
    const base = silentLogger();
    const logger: Logger = {
      ...base,
      info: (obj: unknown, msg?: string) => {
        infos.push({ obj, msg });
      },
      child: () => logger,
    };
    const { machine, runner } = setup({ logger });
    runner.states = [
      { index: 0, mpState: 'halted', interruptsEnabled: true, rip: 0xffffffff81000abcn },
      { index: 1, mpState: 'runnable', interruptsEnabled: false },
    ];
    await machine.start();
    await machine.stop({ kind: 'signal', signal: 'SIGTERM' });
    const rec = infos.find((i) => i.msg === 'vCPU states when stopped');
    expect(rec?.obj).to.deep.equal({
      vcpus: [
        { vcpu: 0, mpState: 'halted', if: true, rip: '0xffffffff81000abc' },
        { vcpu: 1, mpState: 'runnable', if: false, rip: undefined },
      ],
    });
    const quiet: { msg?: string }[] = [];
    const l2: Logger = {
      ...base,
      info: (_o: unknown, msg?: string) => {
        quiet.push({ msg });
      },
      child: () => l2,
    };
    const b = setup({ logger: l2 });
    await b.machine.start();
    await b.machine.stop({ kind: 'poweroff' });
    expect(quiet.map((q) => q.msg)).not.to.include('vCPU states when stopped');
  });

  for (const kernel of ['bzImage', 'vmlinux']) {
    it(`builds the ACPI tables with every contribution at 0xe0000 and hands the RSDP to the ${kernel}`, async () => {
      const acpi = new AcpiTableSet();
      acpi.contribute(x86AcpiContribution(2));
      acpi.contribute({ source: 'dev', dsdt: () => aml.scope('\\_SB', [aml.device('DEV0', [aml.name('_UID', 7)])]) });
      const { machine, memory } = setup({ kernel, acpi });
      await machine.start();
      expect(machine.plan!.rsdp).to.equal(ACPI_START);
      const at = kernel === 'bzImage' ? X86Layout.ZERO_PAGE + 0x70n : X86Layout.PVH_INFO + 32n;
      expect(new DataView(memory.read(GuestAddress.of(at), 8).buffer).getBigUint64(0, true)).to.equal(ACPI_START);
      const image = memory.read(GuestAddress.of(ACPI_START), Number(ACPI_END - ACPI_START));
      const tables = readTables({ rsdp: ACPI_START, image });
      expect(madtEntries(tables.get('APIC')!).filter((e) => e[0] === MADT_TYPE.LAPIC)).to.have.length(2);
      expect(String.fromCharCode(...tables.get('DSDT')!))
        .to.include('GSIS')
        .and.include('DEV0');
      await machine.stop({ kind: 'api' });
    });
  }

  it('writes no ACPI tables without the acpi plugin (acpi: false)', async () => {
    const { machine, memory } = setup({ vcpus: 1 });
    await machine.start();
    expect(machine.plan!.rsdp).to.equal(undefined);
    expect([...memory.read(GuestAddress.of(ACPI_START), 8)]).to.deep.equal(new Array(8).fill(0));
    await machine.stop({ kind: 'api' });
  });

  it('refuses more vCPUs than KVM allows before creating any', async () => {
    const { machine, vm, hv } = setup({ vcpus: 300 });
    vm.capabilities.maxVcpus = 300;
    const err = await machine.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(X86BootError).with.property('kind', 'TooManyVcpus');
    expect(hv.callsTo('vm', 'createVcpu')).to.have.length(0);
    expect((await machine.stopped).kind).to.equal('error');
  });

  it('reports a missing kernel file as an Io error', async () => {
    const { machine } = setup({ kernel: 'nope' });
    const err = await machine.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(BootFileError).with.property('kind', 'Io');
  });
});

describe('x86 power events', () => {
  it('maps exits to stop reasons', () => {
    expect(stopReasonForExit({ kind: 'shutdown' })).to.deep.equal({ kind: 'triple-fault' });
    expect(stopReasonForExit({ kind: 'system-event', type: 'reset', raw: 2 })).to.deep.equal({ kind: 'reset' });
    expect(stopReasonForExit({ kind: 'system-event', type: 'shutdown', raw: 1 })).to.deep.equal({ kind: 'poweroff' });
    expect(stopReasonForExit({ kind: 'internal-error', suberror: 1 })!.kind).to.equal('error');
    expect(stopReasonForExit({ kind: 'debug' })).to.equal(undefined);
  });

  it('sees poweroff only when nothing can wake the guest', () => {
    expect(
      isPoweredOffByHalt([
        { index: 0, mpState: 'halted', interruptsEnabled: false },
        { index: 1, mpState: 'uninitialized', interruptsEnabled: false },
      ]),
    ).to.equal(true);
    expect(
      isPoweredOffByHalt([
        { index: 0, mpState: 'halted', interruptsEnabled: false },
        { index: 1, mpState: 'runnable', interruptsEnabled: false },
      ]),
    ).to.equal(false);
    expect(isPoweredOffByHalt([{ index: 0, mpState: 'uninitialized', interruptsEnabled: false }])).to.equal(false);
    expect(isPoweredOffByHalt([])).to.equal(false);
  });
});
