import { alloc, offsetOf } from '../abi/layout.js';
import * as S from '../abi/structs.js';
import { IRQCHIP_IOAPIC, IRQCHIP_PIC_MASTER, IRQCHIP_PIC_SLAVE } from '../abi/ioctls.js';
import { KvmError } from '../errors.js';
import { ioctlBuf } from '../native.js';
import type { KvmVm } from '../vm.js';

/** Blob keys of an x86 KVM VM's saveState (versioned: a new layout gets a new key). */
export const VM_STATE_KEYS = {
  clock: 'kvm.clock.v1',
  picMaster: 'kvm.irqchip.pic_master.v1',
  picSlave: 'kvm.irqchip.pic_slave.v1',
  ioapic: 'kvm.irqchip.ioapic.v1',
  pit: 'kvm.pit2.v1',
} as const;

const CHIPS = [
  [VM_STATE_KEYS.picMaster, IRQCHIP_PIC_MASTER],
  [VM_STATE_KEYS.picSlave, IRQCHIP_PIC_SLAVE],
  [VM_STATE_KEYS.ioapic, IRQCHIP_IOAPIC],
] as const;

/** Reads one irqchip's state (PIC master/slave, IOAPIC) as a kvm_irqchip buffer. */
export function getIrqChip(vm: KvmVm, chip: number): Buffer {
  vm.assertOpen();
  const { buf, view } = alloc(S.kvm_irqchip);
  view.setUint32(offsetOf(S.kvm_irqchip, 'chip_id'), chip, true);
  ioctlBuf(vm.fd, 'GET_IRQCHIP', buf);
  return buf;
}

/** kvmclock, and with the in-kernel irqchip its PICs and IOAPIC, and the PIT when there is one. */
export function saveX86VmState(vm: KvmVm): Record<string, Uint8Array> {
  vm.assertOpen();
  const out: Record<string, Uint8Array> = {};
  const clock = alloc(S.kvm_clock_data);
  ioctlBuf(vm.fd, 'GET_CLOCK', clock.buf);
  out[VM_STATE_KEYS.clock] = new Uint8Array(clock.buf);
  if (vm.hasIrqChip) for (const [key, chip] of CHIPS) out[key] = new Uint8Array(getIrqChip(vm, chip));
  if (vm.pit) {
    const { buf } = alloc(S.kvm_pit_state2);
    ioctlBuf(vm.fd, 'GET_PIT2', buf);
    out[VM_STATE_KEYS.pit] = new Uint8Array(buf);
  }
  return out;
}

/**
 * Restores blobs saveX86VmState made. Every blob is checked (known key, exact size, a chip this VM has)
 * before the first ioctl, so a hostile state sets nothing.
 */
export function restoreX86VmState(vm: KvmVm, s: Record<string, Uint8Array>): void {
  vm.assertOpen();
  const known = new Set<string>(Object.values(VM_STATE_KEYS));
  for (const k of Object.keys(s))
    if (!known.has(k)) throw new KvmError('InvalidArgument', `unknown VM state blob '${k}'`, { key: k });
  const blob = (key: string, size: number): Buffer | undefined => {
    const b = s[key];
    if (!b) return undefined;
    if (b.length !== size)
      throw new KvmError('InvalidArgument', `VM state '${key}' must be ${size} bytes, got ${b.length}`, { key });
    return Buffer.from(b);
  };
  const chips: Buffer[] = [];
  for (const [key] of CHIPS) {
    const b = blob(key, S.kvm_irqchip.size);
    if (!b) continue;
    if (!vm.hasIrqChip)
      throw new KvmError('InvalidArgument', `VM state has '${key}' but this VM has no in-kernel irqchip`);
    const chip = b.readUInt32LE(offsetOf(S.kvm_irqchip, 'chip_id'));
    if (chip > IRQCHIP_IOAPIC) throw new KvmError('InvalidArgument', `VM state '${key}' names irqchip ${chip}`);
    chips.push(b);
  }
  const pit = blob(VM_STATE_KEYS.pit, S.kvm_pit_state2.size);
  if (pit && !vm.pit) throw new KvmError('InvalidArgument', `VM state has a PIT but this VM has none`);
  const clock = blob(VM_STATE_KEYS.clock, S.kvm_clock_data.size);

  for (const b of chips) ioctlBuf(vm.fd, 'SET_IRQCHIP', b);
  if (pit) ioctlBuf(vm.fd, 'SET_PIT2', pit);
  if (clock) {
    // Only `clock` (and flags 0) is an input of KVM_SET_CLOCK here.
    const { buf, view } = alloc(S.kvm_clock_data);
    view.setBigUint64(0, clock.readBigUInt64LE(offsetOf(S.kvm_clock_data, 'clock')), true);
    ioctlBuf(vm.fd, 'SET_CLOCK', buf);
  }
}
