import type { PlanContext, PluginProblem } from '../../core/plugin/plugin.js';
import type { KvmConfig } from './config.js';
import { KvmHypervisor } from './hypervisor.js';

/**
 * How many vCPUs a VM may have on this host's KVM (KVM_CAP_MAX_VCPUS), or undefined when the device does not open
 * here (a host without KVM: the host check says so; `--sandbox` runs elsewhere).
 */
export function hostMaxVcpus(devicePath: string): number | undefined {
  const hv = new KvmHypervisor({ devicePath });
  try {
    return hv.probe().maxVcpus;
  } catch {
    return undefined;
  } finally {
    hv.close();
  }
}

/** The kvm plugin's checks before start (PluginModule.validate): the vCPU count against KVM_CAP_MAX_VCPUS. */
export function kvmProblems(
  config: KvmConfig,
  vm: PlanContext,
  maxVcpus: (devicePath: string) => number | undefined = hostMaxVcpus,
): PluginProblem[] {
  const max = maxVcpus(config.devicePath);
  const vcpus = vm.vm.machine.vcpus;
  if (max === undefined || vcpus <= max) return [];
  return [{ vmKey: ['machine', 'vcpus'], message: `${vcpus} vCPUs: this host's KVM allows at most ${max}` }];
}
