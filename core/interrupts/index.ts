export * from './interrupts.js';
export * from './errors.js';
export * from './gsi-routing.js';
export * from './vm-interrupts.js';
export { MAX_MSI_VECTORS } from './msi-group.js';
