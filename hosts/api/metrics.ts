import type { DeviceCounters } from '../../core/device/counters.js';
import type { ApiVmm } from './vmm.js';

/** `transport.ignoredAccesses` -> `transport_ignored_accesses` (a Prometheus metric name part). */
export function snakeName(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();
}

/** A label value with Prometheus' escapes (backslash, double quote, line feed). */
const label = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * Device counters in Prometheus' text exposition format (version 0.0.4): one counter family per counter name,
 * `tsvmm_device_<name>_total{device="<id>"}`, HELP and TYPE once per family, families sorted by name.
 */
export function countersText(counters: DeviceCounters): string {
  const families = new Map<string, string[]>();
  for (const [device, c] of Object.entries(counters))
    for (const [name, v] of Object.entries(c)) {
      const fam = `tsvmm_device_${snakeName(name)}_total`;
      let rows = families.get(fam);
      if (!rows) families.set(fam, (rows = []));
      rows.push(`${fam}{device="${label(device)}"} ${v}`);
    }
  const out: string[] = [];
  for (const fam of [...families.keys()].sort()) {
    out.push(`# HELP ${fam} device counter (vm.counters)`, `# TYPE ${fam} counter`, ...families.get(fam)!);
  }
  return out.join('\n');
}

const STATES = ['Created', 'Running', 'Paused', 'Shutdown'] as const;

/** GET /metrics: the VM's state as a gauge per state, then every device counter (none without a running VM). */
export function prometheusText(vmm: ApiVmm): string {
  let state: string | undefined;
  try {
    state = vmm.state();
  } catch {
    state = undefined;
  }
  const lines = ['# HELP tsvmm_vm_state 1 for the state the VM is in', '# TYPE tsvmm_vm_state gauge'];
  for (const s of STATES) lines.push(`tsvmm_vm_state{state="${s}"} ${state === s ? 1 : 0}`);
  const counters = vmm.current ? vmm.counters() : {};
  const text = countersText(counters);
  return `${lines.join('\n')}\n${text ? `${text}\n` : ''}`;
}
