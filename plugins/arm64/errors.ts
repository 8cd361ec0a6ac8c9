import { VmmError } from '../../core/errors.js';

/**
 * The arm64 machine's errors: a bad kernel image or boot layout ('BadImage', 'NoRoom'), a device tree that
 * cannot be encoded ('BadDeviceTree'), a config the machine refuses ('InvalidConfig'), a hypervisor call that
 * failed during set-up ('Setup').
 */
export class Arm64Error extends VmmError<'BadImage' | 'NoRoom' | 'BadDeviceTree' | 'InvalidConfig' | 'Setup'> {}
