/** The transport-independent virtio core, for device plugins and transports. */
export * from './constants.js';
export * from './errors.js';
export * from './split-queue.js';
export * from './descriptor-chain.js';
export * from './chain-io.js';
export * from './queue-runner.js';
export * from './status.js';
export * from './state.js';
