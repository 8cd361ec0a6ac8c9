import type { Disposable } from '../../core/bus/bus.js';
import type { EventFdFactory, EventLoop } from '../../core/events/event-loop.js';
import type { Logger } from '../../core/logger.js';
import { selectVirtioTransport, type VirtioTransportHost } from '../../core/virtio/transport.js';
import { VhostUserDevice, type VhostUserDeviceOptions } from './device.js';
import { VhostUserFrontend, type BackendInfo } from './frontend.js';

/** What a vhost-user device plugin (vhost-user-blk, virtio-fs) hands attachVhostUser. */
export interface VhostUserAttachSpec {
  /** The plugin instance (device id, and the name in errors). */
  readonly instance: string;
  readonly socketPath: string;
  readonly transports: readonly VirtioTransportHost[];
  /** The device config's `transport` and the VM's `virtio.transport`. */
  readonly transport?: string;
  readonly vmTransport?: string;
  readonly loop: EventLoop;
  readonly eventFds: EventFdFactory;
  readonly logger: Logger;
  /** Bytes of config space to read from the back end (GET_CONFIG), if the device's config comes from there. */
  readonly configSize?: number;
  readonly reconnectMs?: number;
  /** The device's shape once the back end's features and config are known (throws to refuse the back end). */
  readonly describe: (backend: BackendInfo) => Omit<VhostUserDeviceOptions, 'id'>;
}

/**
 * The attach() of a vhost-user device plugin: picks the transport, connects to the back end and negotiates,
 * builds the device and attaches it. A back end lost later is reconnected to; one that cannot carry on
 * marks the device DEVICE_NEEDS_RESET through the transport. The Disposable detaches the device, stops
 * the rings and closes the connection.
 */
export async function attachVhostUser(spec: VhostUserAttachSpec): Promise<Disposable[]> {
  const transport = selectVirtioTransport(
    spec.transports,
    { device: spec.transport, vmDefault: spec.vmTransport },
    spec.instance,
  );
  const logger = spec.logger.child({ device: spec.instance });
  let onFatal: (why: string) => void = () => undefined;
  const frontend = await VhostUserFrontend.connect({
    socketPath: spec.socketPath,
    loop: spec.loop,
    logger,
    configSize: spec.configSize,
    reconnectMs: spec.reconnectMs,
    onFatal: (why) => onFatal(why),
  });
  let device: VhostUserDevice;
  let attachment: Disposable;
  try {
    device = new VhostUserDevice(
      { id: spec.instance, ...spec.describe(frontend.backend) },
      frontend,
      spec.loop,
      spec.eventFds,
      logger,
    );
  } catch (err) {
    frontend.dispose();
    throw err;
  }
  try {
    attachment = transport.attachVirtioDevice(device, { name: spec.instance });
    onFatal = (why) => device.backendFailed(why);
  } catch (err) {
    device.destroy();
    throw err;
  }
  logger.info(
    { socket: spec.socketPath, features: `0x${device.deviceFeatures.toString(16)}` },
    'vhost-user device attached',
  );
  return [
    {
      dispose: () => {
        attachment.dispose();
        device.destroy();
      },
    },
  ];
}
