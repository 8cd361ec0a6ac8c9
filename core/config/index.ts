export * from './errors.js';
export * from './source.js';
export * from './load.js';
export * from './host-memory.js';
