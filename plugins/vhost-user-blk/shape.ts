import { VhostUserError } from '../vhost-user/errors.js';
import type { BackendInfo } from '../vhost-user/frontend.js';

/** Bytes of struct virtio_blk_config read from the back end (up to write_zeroes_may_unmap and its padding). */
export const VHOST_BLK_CONFIG_SIZE = 60;
/** Offset of num_queues in struct virtio_blk_config. */
const NUM_QUEUES = 34;

/**
 * virtio-blk feature bits passed from the back end to the driver: SIZE_MAX, SEG_MAX, GEOMETRY, RO, BLK_SIZE,
 * FLUSH, TOPOLOGY, MQ, DISCARD, WRITE_ZEROES. Not CONFIG_WCE (11): the config space is read-only here.
 */
export const BLK_PASSED_FEATURES = [1, 2, 4, 5, 6, 9, 10, 12, 13, 14].reduce((m, b) => m | (1n << BigInt(b)), 0n);

/**
 * The device's queues, features and config from what the back end said. Refuses a back end without
 * GET_CONFIG (the disk's size comes from there) or with fewer queues than configured; the config's
 * num_queues is set to the queues offered.
 */
export function blkDeviceShape(
  backend: BackendInfo,
  numQueues: number,
  queueSize: number,
  who: string,
): { queueMaxSizes: number[]; allowedDeviceFeatures: bigint; config: Uint8Array } {
  if (!backend.config)
    throw new VhostUserError('Unsupported', `${who}: the back end does not offer its config space (GET_CONFIG)`, {});
  if (numQueues > (backend.maxQueues ?? 1))
    throw new VhostUserError(
      'Unsupported',
      `${who}: numQueues ${numQueues} but the back end serves ${backend.maxQueues ?? 1}`,
      { numQueues, backendQueues: backend.maxQueues ?? 1 },
    );
  const config = backend.config.slice();
  new DataView(config.buffer).setUint16(NUM_QUEUES, numQueues, true);
  const mq = numQueues > 1 ? 0n : 1n << 12n;
  return {
    queueMaxSizes: Array.from({ length: numQueues }, () => queueSize),
    allowedDeviceFeatures: BLK_PASSED_FEATURES & ~mq,
    config,
  };
}
