export * from './address.js';
export * from './device.js';
export * from './bus.js';
