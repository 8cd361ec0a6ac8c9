export * from './errors.js';
export * from './source.js';
export * from './load.js';
