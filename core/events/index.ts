export * from './errors.js';
export * from './uv-event-loop.js';
export * from './linux-eventfd.js';
