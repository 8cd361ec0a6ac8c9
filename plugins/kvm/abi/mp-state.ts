import type { MpState } from '../../../core/hypervisor/hypervisor.js';
import { MP_STATE } from './ioctls.js';

const MP_NAMES: Record<number, MpState> = {
  [MP_STATE.RUNNABLE]: 'runnable',
  [MP_STATE.UNINITIALIZED]: 'uninitialized',
  [MP_STATE.INIT_RECEIVED]: 'init-received',
  [MP_STATE.HALTED]: 'halted',
  [MP_STATE.SIPI_RECEIVED]: 'sipi-received',
  [MP_STATE.STOPPED]: 'stopped',
};
/** The MpState name of a KVM_MP_STATE_* number (undefined for an unknown one). */
export function mpStateName(n: number): MpState | undefined {
  return MP_NAMES[n];
}
/** The KVM_MP_STATE_* number of an MpState name. */
export function mpStateNumber(s: MpState): number {
  const e = Object.entries(MP_NAMES).find(([, v]) => v === s);
  if (!e) throw new RangeError(`unknown mp state '${s}'`);
  return Number(e[0]);
}
