import type { Disposable } from '../bus/bus.js';
import type { Device, DeviceRegistry } from './device.js';
import { DeviceError } from './errors.js';

/** Devices in registration order, unique by id. */
export class OrderedDeviceRegistry implements DeviceRegistry {
  private readonly byId = new Map<string, Device>();

  add(device: Device): Disposable {
    if (this.byId.has(device.id))
      throw new DeviceError('Duplicate', `a device with id '${device.id}' is already registered`, { id: device.id });
    this.byId.set(device.id, device);
    let done: Promise<void> | undefined;
    return {
      dispose: (): Promise<void> =>
        (done ??= (async () => {
          if (this.byId.get(device.id) === device) this.byId.delete(device.id);
          await device.destroy?.();
        })()),
    };
  }

  get(id: string): Device | undefined {
    return this.byId.get(id);
  }
  all(): readonly Device[] {
    return [...this.byId.values()];
  }
}
