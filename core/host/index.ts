export * from './host-files.js';
export * from './host-check.js';
export * from './boot-files.js';
