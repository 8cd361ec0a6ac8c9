import type { PlanContext, PluginProblem } from '../../core/plugin/plugin.js';
import type { X86Config } from './config.js';
import { MPTABLE_MAX_VCPUS } from './platform/mptable.js';

/**
 * The x86 machine's checks before start (PluginModule.validate): what assembly would refuse for the VM's shape —
 * more vCPUs than the MP table and the MADT can number (xAPIC ids), ACPI on without a plugin providing the tables.
 */
export function x86Problems(config: X86Config, vm: PlanContext): PluginProblem[] {
  const out: PluginProblem[] = [];
  if (vm.vm.machine.vcpus > MPTABLE_MAX_VCPUS) {
    out.push({
      vmKey: ['machine', 'vcpus'],
      message: `${vm.vm.machine.vcpus} vCPUs: the x86 machine numbers at most ${MPTABLE_MAX_VCPUS} (xAPIC ids)`,
    });
  }
  if (config.acpi && vm.providers('AcpiTables').length === 0) {
    out.push({
      key: ['acpi'],
      message:
        "ACPI is on (x86 config 'acpi', default true) but no acpi plugin is listed: add '- name: acpi' to plugins, " +
        "or set 'acpi: false' in x86's config for a guest with the MP table only",
    });
  }
  return out;
}
