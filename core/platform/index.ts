export * from './errors.js';
export * from './cmdline-builder.js';
export * from './layout.js';
export * from './range-allocator.js';
export * from './platform-resources.js';
