/**
 * Linux tier, the cloud host's guest proofs (issue 13). For now: the ACPI power button — SIGTERM to the VMM
 * presses it, the guest kit's /init sees the key, prints its marker and powers off; the VMM exits 143.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { guestScope, microConfig, spawnVmm } from './guest-vm.js';

describe('cloud host (linux tier)', function () {
  this.timeout(600_000);
  const g = guestScope('cloud-linux');

  it('SIGTERM presses the ACPI power button: the guest shuts itself down', async () => {
    const { kit, dir } = g;
    const script = `
echo "button=$(cat /sys/class/input/event*/device/name 2>/dev/null | grep -c 'Power Button')"
echo ready-for-sigterm
sleep 600
echo sigterm-did-not-come
`;
    const config = microConfig({ kit, dir, name: 'cloud', script, vcpus: 2, plugins: [] });
    for (const p of config.plugins as { name: string; config?: unknown }[])
      if (p.name === 'x86') p.config = { powerButton: true };
    const cfg = path.join(dir, 'cloud.yaml');
    fs.writeFileSync(cfg, stringify(config));
    let termAt = 0;
    const vmm = spawnVmm(cfg, {
      cwd: dir,
      onOutput: (stdout, child) => {
        if (!termAt && /^ready-for-sigterm\r?$/m.test(stdout)) {
          termAt = Date.now();
          child.kill('SIGTERM');
        }
      },
    });
    const deadline = setTimeout(() => vmm.child.kill('SIGKILL'), 540_000);
    const r = await vmm.ended;
    clearTimeout(deadline);
    const tail = `exit ${r.code} ${r.signal}; output tail:\n${r.text.slice(-4000)}`;
    console.log(
      `      boot: ${r.seconds.toFixed(1)} s; stop after SIGTERM: ${((Date.now() - termAt) / 1000).toFixed(1)} s`,
    );
    expect(r.stdout, tail).to.match(/button=1/);
    expect(r.stdout, tail).to.contain('TSVMM-POWER-BUTTON');
    expect(r.text, tail).to.contain('the guest shut down after the power button').and.not.contain('in time');
    expect(r.code, tail).to.equal(143);
  });
});
