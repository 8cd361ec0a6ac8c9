export * from './errors.js';
export * from './region-guest-memory.js';
export * from './factory.js';
export * from './backends/layout.js';
export * from './backends/anonymous-mmap.js';
export * from './backends/shared-file-mmap.js';
export * from './backends/memfd.js';
export * from './backends/heap.js';
