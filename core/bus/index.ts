export * from './errors.js';
export * from './range-bus.js';
