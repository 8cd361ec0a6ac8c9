import { describeKvmHost, detectHost, type HostInfo } from './host-kind.js';

/**
 * The kvm plugin's host check (PluginModule.hostCheck): on a host whose /dev/kvm cannot boot an
 * unmodified Linux kernel (PVM) or that has none, one plain line saying so and pointing at
 * `vmm run --sandbox`; undefined where KVM is usable.
 */
export function kvmHostCheck(info: HostInfo = detectHost()): string | undefined {
  return info.kind === 'pvm' || info.kind === 'none' ? describeKvmHost(info) : undefined;
}
