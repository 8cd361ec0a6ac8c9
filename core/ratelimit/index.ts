export * from './token-bucket.js';
export * from './rate-limiter.js';
export * from './log-limiter.js';
