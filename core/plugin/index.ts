export * from './errors.js';
export * from './manifest.js';
export * from './locations.js';
export * from './discovery.js';
export * from './order.js';
export * from './load-module.js';
