import { VmmError } from '../../core/errors.js';

/** Errors of the pci-hotplug plugin: an eject the guest did not do in time, a VM that stopped meanwhile. */
export class PciHotplugError extends VmmError<'EjectTimeout' | 'Stopped' | 'Config'> {}
