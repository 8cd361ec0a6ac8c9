/**
 * The AML builder: encoders for the DSDT's names, scopes, devices, methods, expressions, data
 * and resource templates. Contributors (plugins/x86, plugins/virtio-mmio, ...) import it to
 * build the bytes they hand to the AcpiTables service.
 */
export { concat, eisaId, integer, nameSeg, nameString, pkgLength, string } from './encoding.js';
export * from './terms.js';
export * from './resources.js';
