import type { PciDevice } from '../../core/pci/index.js';

/** A PCI function with no BARs whose config space reads as `config` (tests of hotplug bookkeeping). */
export function emptyPciFunction(id: string, config = 0): PciDevice {
  return {
    id,
    configSize: 256,
    bars: [],
    plugged: () => {},
    readConfig: () => config,
    writeConfig: () => {},
    readBar: () => {},
    writeBar: () => {},
  };
}
