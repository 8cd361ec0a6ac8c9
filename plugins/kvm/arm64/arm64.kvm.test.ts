import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { GuestAddress, GuestRange } from '../../../core/address.js';
import type { BusDevice } from '../../../core/bus/bus.js';
import { RangeBus } from '../../../core/bus/range-bus.js';
import { UvEventLoop } from '../../../core/events/uv-event-loop.js';
import type { VcpuExit } from '../../../core/hypervisor/hypervisor.js';
import { createAnonymousMmapMemory } from '../../../core/memory/backends/anonymous-mmap.js';
import type { GuestMemory } from '../../../core/memory/guest-memory.js';
import { arm64Vcpu, arm64Vm } from '../../arm64/hypervisor/extension.js';
import { Arm64Layout } from '../../arm64/layout.js';
import { KvmHypervisor } from '../hypervisor.js';
import { mapGuestMemory } from '../memory.js';
import { WorkerVcpuRunner } from '../runner/worker-runner.js';
import type { KvmVm } from '../vm.js';
import { ARM64_REG, PSTATE } from './abi.js';
import { A64, PSCI_FN } from './testing.js';

const RAM = Arm64Layout.RAM_START;
const SECONDARY = RAM + 0x100n;

/** Records MMIO byte writes. */
class Recorder implements BusDevice {
  readonly bytes: number[] = [];
  read(_offset: bigint, data: Uint8Array): void {
    data.fill(0);
  }
  write(_offset: bigint, data: Uint8Array): void {
    this.bytes.push(data[0]!);
  }
}

/** `x1 = UART; strb w<ch>, [x1]`. */
const putc = (a: A64, ch: number) => a.movz(1, 0x0900, 16).movz(2, ch, 0, false).strb(2, 1);

// KVM runs guests of the host's architecture: the guest tests exist on an arm64 host (the arm64 sandbox's L1).
if (process.arch === 'arm64') describeArm64();
else
  describe('KVM on a non-arm64 host (host /dev/kvm)', () => {
    it('has no arm64 extensions, and says so naming them', () => {
      const hv = new KvmHypervisor();
      const vm = hv.createKvmVm();
      try {
        expect(() => arm64Vm(vm)).to.throw(/has no 'aarch64\.vm' extension/);
        expect(() => arm64Vcpu(vm.createKvmVcpu(0))).to.throw(/has no 'aarch64\.vcpu' extension/);
      } finally {
        vm.close();
        hv.close();
      }
    });
  });

function describeArm64(): void {
  describe('KVM on arm64 (host /dev/kvm)', function () {
    this.timeout(120_000);
    let hv: KvmHypervisor;
    let vm: KvmVm;
    let mem: GuestMemory;
    let loop: UvEventLoop;
    let runner: WorkerVcpuRunner | undefined;

    before(function () {
      if (!existsSync('/dev/kvm')) throw new Error('no /dev/kvm on this arm64 host');
    });
    beforeEach(() => {
      hv = new KvmHypervisor();
      vm = hv.createKvmVm();
      mem = createAnonymousMmapMemory({ regions: [{ start: RAM, size: 2n << 20n }], backend: 'anonymous' });
      mapGuestMemory(vm, mem);
      loop = new UvEventLoop();
    });
    afterEach(async () => {
      await runner?.stop();
      runner = undefined;
      loop.dispose();
      vm.close();
      mem.close();
      hv.close();
    });

    it('boots a GICv3 + ITS VM, starts vCPU 1 through PSCI CPU_ON, sees MMIO writes and SYSTEM_OFF', async () => {
      const boot = new A64().movz(0, 3, 0, false).movk(0, 0xc400, 16, false); // PSCI CPU_ON (64-bit)
      boot.movz(1, 1).mov64(2, SECONDARY).movz(3, 0).hvc(0);
      putc(boot, 0x41).spin();
      const second = putc(new A64(), 0x42).movz(0, 8, 0, false).movk(0, 0x8400, 16, false).hvc(0).spin();
      expect(PSCI_FN.SYSTEM_OFF).to.equal(0x84000008);
      mem.write(GuestAddress.of(RAM), boot.bytes());
      mem.write(GuestAddress.of(SECONDARY), second.bytes());

      vm.createIrqChip();
      const target = arm64Vm(vm).preferredTarget();
      const vcpus = [0, 1].map((i) => vm.createKvmVcpu(i));
      vcpus.forEach((v, i) => arm64Vcpu(v).init({ target, powerOff: i > 0 }));
      arm64Vm(vm).finalizeIrqChip();
      expect(arm64Vm(vm).hasIts).to.equal(true);
      const cpu0 = arm64Vcpu(vcpus[0]!);
      cpu0.setReg(ARM64_REG.pc, RAM);
      cpu0.setReg(ARM64_REG.pstate, BigInt(PSTATE.BOOT));
      expect(cpu0.getReg(ARM64_REG.pc)).to.equal(RAM);
      expect(arm64Vcpu(vcpus[1]!).getReg(ARM64_REG.mpidr) & 0xff_ffffn).to.equal(1n);
      expect(vcpus[1]!.getMpState()).to.equal('stopped');

      const bus = new RangeBus();
      const uart = new Recorder();
      bus.register('mmio', GuestRange.of(Arm64Layout.UART, 0x1000n), uart, 'uart');
      const exits: string[] = [];
      runner = new WorkerVcpuRunner(vcpus, bus, loop, {
        notify: 'eventfd',
        onExit: (i: number, e: VcpuExit) => {
          exits.push(`${i}:${e.kind}:${e.kind === 'system-event' ? e.type : ''}`);
          return 'stop';
        },
      });
      await runner.start();
      const deadline = Date.now() + 60_000;
      while (!exits.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(exits).to.deep.equal(['1:system-event:shutdown']);
      expect([...uart.bytes].sort()).to.deep.equal([0x41, 0x42]);
    });

    it('raises an SPI through KVM_IRQ_LINE once the GIC is initialised', () => {
      vm.createIrqChip();
      const target = arm64Vm(vm).preferredTarget();
      arm64Vcpu(vm.createKvmVcpu(0)).init({ target, powerOff: false });
      arm64Vm(vm).finalizeIrqChip();
      expect(() => vm.setIrqLine(Arm64Layout.SPI_UART, true)).not.to.throw();
      expect(() => vm.setIrqLine(Arm64Layout.SPI_UART, false)).not.to.throw();
    });
  });
}
