import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seccompDeathReport } from '../../core/security/seccomp-report.js';
import { statusFields } from './run-vmm.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'vcpu-filter-child.js');

/** Runs the fixture child (fixtures/vcpu-filter-child.ts) with `variant`; the seccomp report when SIGSYS ended it. */
function runChild(variant: 'right' | 'no-run') {
  const r = spawnSync(process.execPath, [CHILD, variant], { encoding: 'utf8', timeout: 30_000 });
  return { ...r, report: r.signal === 'SIGSYS' ? seccompDeathReport(r.pid!) : undefined };
}
/** The status fields the child printed on its `key` line ('thread' or 'main'). */
const line = (out: string, key: string) =>
  statusFields(
    out
      .split('\n')
      .find((l) => l.startsWith(`${key} `))
      ?.slice(key.length + 1),
  );

/**
 * The vCPU threads' own seccomp filter (core/security/vcpu-policy.ts), which the kvm plugin's runner gives every vCPU
 * worker: installed on that thread alone (the main thread keeps none here), it lets the guest run to its hlt, and a
 * KVM request outside its ioctl list (here KVM_RUN itself, left out) kills the process with SIGSYS, which the report
 * names.
 */
describe("seccomp: the vCPU threads' filter", function () {
  this.timeout(60_000);

  it('is on the vCPU thread only, and the guest runs through a PIO exit to its hlt', () => {
    const r = runChild('right');
    expect(r.status, `${r.signal} ${r.stderr}`).to.equal(0);
    const thread = line(r.stdout, 'thread'),
      main = line(r.stdout, 'main');
    expect(thread, r.stdout).to.include({ NoNewPrivs: '1', Seccomp: '2', Seccomp_filters: '1' });
    expect(main, r.stdout).to.include({ NoNewPrivs: '0', Seccomp: '0' });
    expect(r.stdout).to.match(/^hlt$/m);
  });

  it('kills the process on a KVM request outside its list; the report names the call', () => {
    const r = runChild('no-run');
    expect(r.signal, `status ${r.status}: ${r.stdout} ${r.stderr}`).to.equal('SIGSYS');
    expect(r.stdout).to.not.match(/^thread /m);
    expect(r.report).to.equal('killed by seccomp (SIGSYS), syscall 16 (ioctl)');
  });
});
