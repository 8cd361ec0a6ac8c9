export * from './errors.js';
export * from './ordered-registry.js';
export * from './counters.js';
export * from './balloon.js';
