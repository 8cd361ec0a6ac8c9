import 'reflect-metadata';
export * from './mock-hypervisor.js';
export * from './inline-vcpu-runner.js';
export * from './test-memory.js';
export * from './bus-devices.js';
export * from './mock-disk.js';
export * from './manual-event-loop.js';
export { silentLogger } from '../vmm/logger.js';
export * from './watched-memory.js';
