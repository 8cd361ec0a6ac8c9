/**
 * Debian's cloud kernel on the micro host with the pci plugin listed and `pci=off` gone: one boot proves
 * the bus as Linux sees it. The kernel finds the host bridge through ACPI (PCI0, PNP0A08) and MCFG (ECAM
 * accepted late, as reserved by the PNP0C02 node; the early E820 check says 'not using MMCONFIG' first),
 * enumerates 00:00.0 (8086:0d57, host bridge) and the pci-testdev fixture at 00:01.0 (1234:7e57) with its
 * three BARs placed where the bus put them (inside the _CRS windows: claimed, nothing reassigned, no
 * conflict in dmesg), enables the function (decode on, INTA# -> the _PRT's GSI, level/low), reads BAR 0's
 * signature and round-trips its scratch register with busybox devmem. The guest kit's busybox has no lspci:
 * sysfs gives the same facts.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runVm } from '../../core/vmm/run.js';
import { parseGuestOutput } from '../../test/harness/guest-kit.js';
import { guestResult, guestScope, microConfig, repoRoot } from '../../test/guest/guest-vm.js';
import { PCI_GUEST_SCRIPT, pciGuestProblems } from './guest-checks.js';

const SCRIPT = `${PCI_GUEST_SCRIPT}
d=/sys/bus/pci/devices/0000:00:01.0
echo "resources=$(head -n 5 $d/resource | tr '\\n' ';')"
echo 1 > $d/enable
echo "enabled=$(cat $d/enable)"
echo "irq=$(cat $d/irq)"
bar0=$(head -n 1 $d/resource | cut -d ' ' -f 1)
echo "bar0-sig0=$(devmem $bar0 32)"
echo "bar0-sig4=$(devmem $((bar0 + 4)) 32)"
devmem $((bar0 + 8)) 32 0x5a5aa5a5
echo "bar0-scratch=$(devmem $((bar0 + 8)) 32)"
echo done=1
`;

describe('pci plugin: Debian Linux finds the host bridge and a function (linux tier)', function () {
  this.timeout(600_000);
  const scope = guestScope('pci-linux');

  it('enumerates 00:00.0 and 00:01.0 through ACPI + MCFG, BARs claimed without conflicts, BAR 0 answers', async () => {
    const config = microConfig({
      kit: scope.kit,
      dir: scope.dir,
      name: 'pci',
      script: SCRIPT,
      vcpus: 1,
      plugins: [{ name: 'pci' }, { path: path.join(repoRoot(), 'plugins', 'pci', 'fixtures', 'pci-testdev') } as never],
      console: { kind: 'file', path: path.join(scope.dir, 'console.txt') },
    });
    config.boot.cmdline = String(config.boot.cmdline).replace(/\bpci=off\b/, '');
    const t0 = Date.now();
    const vm = await runVm({ config, baseDir: scope.dir }, { signals: [] });
    const seconds = (Date.now() - t0) / 1000;
    const text = fs.readFileSync(path.join(scope.dir, 'console.txt'), 'latin1');
    const out = parseGuestOutput(text);
    const r = guestResult(out.result ?? '');
    const tail = text.slice(-6000);
    console.log(`      boot to poweroff: ${seconds.toFixed(1)} s`);
    for (const line of (out.result ?? '').split('\n').filter((l) => l.startsWith('dmesg: ') || l.startsWith('pcidev')))
      console.log(`      ${line}`);
    expect(r.get('done'), tail).to.equal('1');
    expect(pciGuestProblems(r, { '0000:00:01.0': '0x1234:0x7e57' }), tail).to.deep.equal([]);
    expect(r.get('pcidev-0000:00:01.0')).to.equal('0x1234:0x7e57:0xff0000');
    expect(r.get('enabled')).to.equal('1');
    expect(['5', '6', '10', '11']).to.include(r.get('irq'));
    expect(r.get('bar0-sig0')).to.equal('0x4D565354'); // 'TSVM' little endian
    expect(r.get('bar0-sig4')).to.equal('0x4943504D'); // 'MPCI'
    expect(r.get('bar0-scratch')).to.equal('0x5A5AA5A5');
    const res = (r.get('resources') ?? '').split(';');
    expect(res[0]).to.match(/^0x00000000d[0-9a-f]{7} /); // BAR 0 in the 32-bit window
    expect(BigInt(res[2].split(' ')[0]) >= 1n << 32n).to.equal(true); // BAR 2 in the 64-bit window above RAM
    expect(res[4]).to.match(/^0x0000000000001[0-9a-f]{3} /); // BAR 4: ports from 0x1000
    expect(vm.reason.kind).to.equal('poweroff');
  });
});
