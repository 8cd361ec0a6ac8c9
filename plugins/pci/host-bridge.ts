import { PciConfigSpace } from './config/space.js';
import { PciFunction } from './function.js';

/** The host bridge's identity: Intel's vendor id and the device id Cloud Hypervisor's host bridge uses. */
export const HOST_BRIDGE_IDS = { vendorId: 0x8086, deviceId: 0x0d57 } as const;
/** Class code 06/00/00: bridge device, host bridge. */
export const HOST_BRIDGE_CLASS = 0x06_00_00;

/** Function 00:00.0: the host bridge, header only (no BARs, no interrupt pin). Linux's type 1 probe looks for it. */
export function hostBridge(id = 'pci-host-bridge'): PciFunction {
  return new PciFunction(id, new PciConfigSpace({ ...HOST_BRIDGE_IDS, classCode: HOST_BRIDGE_CLASS }));
}
