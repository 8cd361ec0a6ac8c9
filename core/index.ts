import 'reflect-metadata';
/**
 * tsyringe's decorators and helpers, re-exported so a plugin outside this repository builds its classes
 * with the same tsyringe instance as the kernel (its own copy would keep constructor metadata apart).
 */
export { inject, injectable, injectAll, Lifecycle, delay } from 'tsyringe';
export type { DependencyContainer, InjectionToken } from 'tsyringe';
export * from './errors.js';
export * from './address.js';
export * from './tokens.js';
export * from './logger.js';
export * from './lifecycle.js';
export * from './machine.js';
export * from './memory/guest-memory.js';
export * from './bus/bus.js';
export * from './hypervisor/hypervisor.js';
export * from './hypervisor/extension.js';
export * from './hypervisor/errors.js';
export * from './hypervisor/vcpu-state.js';
export * from './device/device.js';
export * from './events/event-loop.js';
export * from './config/schema.js';
export * from './plugin/plugin.js';
export * from './block/disk.js';
export * from './virtio/virtio.js';
export * from './virtio/transport.js';
export * from './platform/resources.js';
// Implementations (foundation): the kernel behind the interfaces above.
export { GuestMemoryError } from './memory/errors.js';
export { RegionGuestMemory, makeRegion } from './memory/region-guest-memory.js';
export { BackendGuestMemoryFactory } from './memory/factory.js';
export { createAnonymousMmapMemory } from './memory/backends/anonymous-mmap.js';
export { createSharedFileMemory } from './memory/backends/shared-file-mmap.js';
export { createMemfdMemory } from './memory/backends/memfd.js';
export { createHeapMemory } from './memory/backends/heap.js';
export * from './bus/index.js';
export * from './events/index.js';
export * from './config/index.js';
export * from './plugin/index.js';
export * from './platform/index.js';
export * from './device/index.js';
export * from './state/index.js';
export * from './vmm/index.js';
export * from './interrupts/index.js';
export * from './host/index.js';
export * from './pci/index.js';
