import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildLocations } from '../plugin/locations.js';

const loc = buildLocations();

/** `vmm run --force` of the tiny test VM on this host's /dev/kvm with extra flags; the exit status. */
function runTiny(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(
    process.execPath,
    [
      path.join(loc.repoRoot, 'bin', 'vmm.js'),
      'run',
      '--force',
      path.join(loc.repoRoot, 'test/fixtures/tiny-vm.yaml'),
    ].concat(args),
    // the fixture's machine is a path plugin in the source tree: the plain build runs it
    { env: { ...process.env, VMM_DIST: loc.distDir, VMM_BUNDLE: '0' }, encoding: 'utf8', timeout: 60_000 },
  );
  return { status: r.status, stderr: r.stderr };
}

describe('vmm run logging flags (real KVM)', function () {
  this.timeout(120_000);
  let tmp: string;
  before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-log-'))));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('--log-file gets JSON lines at --log-level debug, none below --log-level warn; stderr stays quiet', () => {
    const debug = path.join(tmp, 'debug.log');
    const r = runTiny(['--log-file', debug, '--log-level', 'debug']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.equal('');
    const lines = fs
      .readFileSync(debug, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(lines.map((l) => l.msg)).to.include('kvm probed');
    const warn = path.join(tmp, 'warn.log');
    expect(runTiny(['--log-file', warn, '--log-level', 'warn']).status).to.equal(0);
    expect(fs.readFileSync(warn, 'utf8')).to.equal('');
  });

  it('--log-format pretty writes lines for people on stderr', () => {
    const r = runTiny(['--log-level', 'debug', '--log-format', 'pretty']);
    expect(r.status).to.equal(0);
    expect(r.stderr).to.match(/^\d\d:\d\d:\d\d\.\d{3} DEBUG kvm: kvm probed device=\/dev\/kvm/m);
  });
});
