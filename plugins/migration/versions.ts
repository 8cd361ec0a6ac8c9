import type { VmPlan } from '../../core/vmm/plan.js';
import { MigrationError } from './errors.js';
import type { PluginVersion } from './vm-parts.js';

/** Compares dotted versions numerically ("0.10.0" > "0.9.1"); non-numeric parts compare as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/);
  const pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const [nx, ny] = [Number(x), Number(y)];
    const c = Number.isInteger(nx) && Number.isInteger(ny) ? nx - ny : x.localeCompare(y);
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}

/**
 * Checks that the plan builds the VM the saved plugins built: the same instances of the same plugins, none of
 * them older here than the one that saved (a newer build reads older state through its state specs' upgrades).
 */
export function checkPluginVersions(saved: readonly PluginVersion[], plan: VmPlan): void {
  const here = plan.plugins.map((p) => ({
    instance: p.instance,
    name: p.plugin.manifest.name,
    version: p.plugin.manifest.version,
  }));
  const names = (l: readonly PluginVersion[]): string => l.map((p) => `${p.instance}(${p.name})`).join(', ');
  if (
    here.length !== saved.length ||
    here.some((p, i) => p.instance !== saved[i]!.instance || p.name !== saved[i]!.name)
  )
    throw new MigrationError(
      'Mismatch',
      `the saved VM was built from plugins ${names(saved)}, this config gives ${names(here)}`,
    );
  here.forEach((p, i) => {
    const s = saved[i]!;
    if (compareVersions(s.version, p.version) > 0)
      throw new MigrationError(
        'Version',
        `plugin '${p.name}' ${s.version} saved the VM; this build has ${p.version}, older: upgrade it first`,
        { plugin: p.name },
      );
  });
}
