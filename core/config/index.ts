export * from './errors.js';
export * from './source.js';
export * from './load.js';
export * from './host-memory.js';
export * from './problems.js';
export * from './suggest.js';
export * from './files.js';
export * from './overrides.js';
