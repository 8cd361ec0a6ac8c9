import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';
import { discoverPlugins } from '../../core/plugin/discovery.js';
import { collectCounters } from '../../core/device/counters.js';
import { Tokens } from '../../core/tokens.js';
import { runVm } from '../../core/vmm/run.js';
import { silentLogger } from '../../core/vmm/logger.js';

describe('counters on real KVM (kvm tier)', () => {
  it("the kvm plugin lists its exit counters as device 'kvm' while the VM runs", async function () {
    const kvm = discoverPlugins().get('kvm');
    if (!fs.existsSync('/dev/kvm') || !kvm || !fs.existsSync(kvm.entryPath)) this.skip();
    let seen: Record<string, Record<string, number>> | undefined;
    const r = await runVm(path.join(buildLocations().repoRoot, 'test', 'fixtures', 'tiny-vm.yaml'), {
      logger: silentLogger(),
      signals: [],
      onStarted: (vm) => (seen = collectCounters(vm.container.resolve(Tokens.DeviceRegistry.token))),
    });
    expect(r.exitCode).to.equal(0);
    expect(seen).to.have.property('kvm');
    for (const [k, v] of Object.entries(seen!.kvm)) {
      expect(k).to.match(/^exit(s|Ns)\./);
      expect(v).to.be.at.least(0);
    }
  });
});
