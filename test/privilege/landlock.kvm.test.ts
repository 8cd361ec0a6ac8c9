import { expect } from 'chai';
import { landlockAbi } from '../../core/security/landlock.js';
import { probeLines, runProbeVm, statusFields } from './run-vmm.js';

/**
 * `vmm run --landlock`: the VMM process starts inside a Landlock domain limited to the paths its
 * config names and what Node needs; the privilege probe's open of /etc/shadow after start is refused
 * while the tiny guest still boots. (This machine kind's kernel has Landlock; CI runs here.)
 */
describe("landlock: the VMM's filesystem view", function () {
  this.timeout(60_000);

  it('the kernel has Landlock', () => {
    expect(landlockAbi()).to.be.at.least(1);
  });

  it('refuses /etc/shadow after start; the guest runs, seccomp is on as well', () => {
    const r = runProbeVm('shadow,status', ['--landlock', '--seccomp', 'true']);
    expect(r.status, r.stderr).to.equal(0);
    const lines = probeLines(r.stderr);
    expect(lines.shadow, r.stderr).to.equal('refused (EACCES)');
    expect(statusFields(lines.status).Seccomp).to.equal('2');
    expect(r.stderr).to.match(/^vmm: landlock \(ABI \d+\): the filesystem is limited to \d+ paths$/m);
  });

  it('without --landlock a root VMM could read /etc/shadow (what the option takes away)', function () {
    if (process.getuid?.() !== 0) this.skip(); // an ordinary user cannot read it anyway
    const r = runProbeVm('shadow');
    expect(r.status, r.stderr).to.equal(0);
    expect(probeLines(r.stderr).shadow).to.equal('opened');
  });

  it('a ptrace under --landlock still dies of the seccomp filter; the parent names the call and dies the same way', () => {
    const r = runProbeVm('ptrace', ['--landlock', '--seccomp', 'true']);
    expect(r.signal, r.stderr).to.equal('SIGSYS');
    // the parent opened the kernel log before its domain; as root (CI) the audit record is readable
    const said = r.stderr.split('\n').find((l) => l.startsWith('vmm: the VMM (pid '));
    expect(said, r.stderr).to.match(/ was killed by seccomp \(SIGSYS\)/);
    if (process.getuid?.() === 0) expect(said).to.include('syscall 101 (ptrace)');
  });
});
