import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { detectHost } from '../../plugins/kvm/host-kind.js';
import { buildLocations } from '../../core/plugin/locations.js';

describe('vmm run on a host whose KVM cannot boot Linux', function () {
  this.timeout(60_000);
  const host = detectHost();
  before(function () {
    if (host.kind !== 'pvm' && host.kind !== 'none') this.skip();
  }); // reason: this host's KVM boots Linux; the refusal does not apply

  it('refuses plainly before starting anything, naming --sandbox, and exits 1', () => {
    const loc = buildLocations();
    const r = spawnSync(
      process.execPath,
      [path.join(loc.repoRoot, 'bin', 'vmm.js'), 'run', path.join(loc.repoRoot, 'hosts', 'micro.yaml')],
      { env: { ...process.env, VMM_DIST: loc.distDir }, encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(host.kind === 'pvm' ? /PVM/ : /no \/dev\/kvm/);
    expect(r.stderr).to.contain('vmm run --sandbox');
    expect(r.stderr.trim().split('\n')).to.have.length(1);
  });
});
