/**
 * `tsvmm/pci`: what a PCI device plugin needs, inside this repository or outside it: the PciDevice /
 * PciBus contract (core/pci) and its token, the configuration-space helper (registers with writable and
 * RW1C masks, BARs that answer the sizing probe as hardware does, the capability list), MSI and MSI-X
 * (table and PBA) over the Interrupts service, a PciFunction base that serves BAR regions and INTx, and
 * TestPciBus, the bus double for unit tests.
 */
export * from '../../core/pci/index.js';
export { Tokens } from '../../core/tokens.js';
export * from './config/registers.js';
export * from './config/bars.js';
export * from './config/space.js';
export * from './msi.js';
export * from './msix.js';
export * from './function.js';
export * from './refusals.js';
export * from './errors.js';
export * from './testing.js';
export * from './testing-guest.js';
export * from './guest-checks.js';
