/** Bytes of struct virtio_fs_config: tag[36], then le32 num_request_queues (virtio 1.2 §5.11.4). */
export const FS_CONFIG_SIZE = 40;

/** The virtio-fs config space (built here: virtiofsd does not serve GET_CONFIG). */
export function fsConfigSpace(tag: string, numRequestQueues: number): Uint8Array {
  const b = new Uint8Array(FS_CONFIG_SIZE);
  b.set(Buffer.from(tag).subarray(0, 36));
  new DataView(b.buffer).setUint32(36, numRequestQueues, true);
  return b;
}
