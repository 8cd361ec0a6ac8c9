export * from './errors.js';
export * from './gsi-allocator.js';
export * from './mmio-window-allocator.js';
export * from './cmdline-builder.js';
export * from './layout.js';
