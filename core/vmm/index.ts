export * from './errors.js';
export * from './plan.js';
export * from './assemble.js';
export * from './run.js';
export * from './exit-codes.js';
export * from './logger.js';
export * from './timings.js';
