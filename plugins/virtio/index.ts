/**
 * `tsvmm/virtio`: what a virtio device plugin needs, inside this repository or outside it
 * (an npm package): the device and transport interfaces (VirtioDevice, VirtioTransportHost,
 * the VIRTIO_TRANSPORT token), the split virtqueue with its descriptor chain reader/writer,
 * device status and feature negotiation, the queue-serving helpers, saved queue state, and
 * the driver-side test doubles (MockSplitQueue, EchoDevice, FakeEventSystem).
 */
export * from '../../core/virtio/virtio.js';
export * from '../../core/virtio/transport.js';
export * from '../../core/virtio/errors.js';
export { VIRTIO_TRANSPORT } from '../../core/tokens.js';
export * from './constants.js';
export * from './errors.js';
export * from './split-queue.js';
export * from './descriptor-chain.js';
export * from './chain-io.js';
export * from './queue-runner.js';
export * from './served-queue.js';
export * from './status.js';
export * from './state.js';
export * from './testing.js';
