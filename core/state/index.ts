export * from './errors.js';
export * from './codecs.js';
export * from './snapshottable.js';
export * from './persist.js';
export * from './registry.js';
export * from './vm-state.js';
export * from './hypervisor-state.js';
