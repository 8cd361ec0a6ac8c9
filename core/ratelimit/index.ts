export * from './token-bucket.js';
export * from './rate-limiter.js';
