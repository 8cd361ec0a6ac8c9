import { expect } from 'chai';
import { SECCOMP_DEFAULT } from '../../core/security/run-options.js';
import { probeLines, runProbeVm, statusFields } from './run-vmm.js';

/**
 * The system call filter of `vmm run` (core/security), on the kvm tier's tiny guest with the test-only
 * privilege probe, which acts once the machine has started: the filter kills the VMM on ptrace and execve, only logs in
 * `--seccomp log` mode, and is absent with `--seccomp false`.
 */
describe("seccomp: the VMM's system call filter", function () {
  this.timeout(60_000);

  it('--seccomp true: no_new_privs set, seccomp mode 2, and the guest still runs to its hlt', () => {
    const r = runProbeVm('status', ['--seccomp', 'true']);
    expect(r.status, r.stderr).to.equal(0);
    const st = statusFields(probeLines(r.stderr).status);
    expect(st.NoNewPrivs, r.stderr).to.equal('1');
    expect(st.Seccomp, r.stderr).to.equal('2');
  });

  for (const call of ['ptrace', 'execve']) {
    it(`kills the VMM (SIGSYS) when it calls ${call} after start`, () => {
      const r = runProbeVm(call, ['--seccomp', 'true']);
      expect(r.signal, `status ${r.status}, stderr: ${r.stderr}`).to.equal('SIGSYS');
      expect(probeLines(r.stderr)[call], 'nothing after the call').to.equal(undefined);
    });
  }

  it('--seccomp log lets the call run (the kernel logs it)', () => {
    const r = runProbeVm('ptrace', ['--seccomp', 'log']);
    expect(r.status, r.stderr).to.equal(0);
    expect(probeLines(r.stderr).ptrace).to.equal('allowed');
  });

  it(`without the option the filter is as its default says (${SECCOMP_DEFAULT})`, () => {
    const r = runProbeVm('status');
    expect(r.status, r.stderr).to.equal(0);
    expect(statusFields(probeLines(r.stderr).status).Seccomp).to.equal(SECCOMP_DEFAULT === 'false' ? '0' : '2');
  });

  it("the config's machine.seccomp decides without the option, and --seccomp overrides it", () => {
    const off = runProbeVm('status', ['--set', 'machine.seccomp=false']);
    expect(off.status, off.stderr).to.equal(0);
    expect(statusFields(probeLines(off.stderr).status).Seccomp).to.equal('0');
    const on = runProbeVm('status', ['--set', 'machine.seccomp=false', '--seccomp', 'true']);
    expect(on.status, on.stderr).to.equal(0);
    expect(statusFields(probeLines(on.stderr).status).Seccomp).to.equal('2');
  });

  it('--seccomp false installs nothing', () => {
    const r = runProbeVm('status', ['--seccomp', 'false']);
    expect(r.status, r.stderr).to.equal(0);
    expect(statusFields(probeLines(r.stderr).status).Seccomp).to.equal('0');
  });
});
