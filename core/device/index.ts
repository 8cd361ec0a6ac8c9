export * from './errors.js';
export * from './ordered-registry.js';
export * from './counters.js';
