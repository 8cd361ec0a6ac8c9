import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';
import { probeLines, runProbeVm, statusFields } from './run-vmm.js';

/**
 * Least privilege: the VMM needs no root, only access to /dev/kvm. Run as root (CI), the test gives
 * the VMM a private mount namespace in which /dev/kvm is a node of the same device owned by `nobody`
 * (the host's /dev/kvm is not touched), the project bind-mounted where `nobody` can reach it, and
 * starts it through setpriv as nobody:nogroup with no capabilities at all (empty bounding set). Run as
 * an ordinary user, the test runs the VMM as that user. Either way the kvm tier's tiny guest must boot
 * (KVM_RUN until its `hlt` gives exit code 0), and the running VMM (the privilege probe reads its
 * /proc/self/status) has no privilege, no_new_privs and its seccomp filter.
 */
const NOBODY = 65534;

describe('least privilege: the VMM as an ordinary user', function () {
  this.timeout(60_000);
  const { root } = projectLayout();

  it('boots the tiny guest with only /dev/kvm: uid nobody, no capabilities, seccomp on', () => {
    const isRoot = process.getuid?.() === 0;
    let r;
    let work: string | undefined;
    if (isRoot) {
      work = mkdtempSync(join(tmpdir(), 'tsvmm-nonroot-'));
      chmodSync(work, 0o755); // nobody must reach the project's mount point
      const kvm = join(work, 'kvm'),
        project = join(work, 'project');
      mkdirSync(project);
      const dev = statSync('/dev/kvm').rdev;
      const mk = spawnSync('mknod', [
        kvm,
        'c',
        String(Math.floor(dev / 256) & 0xfff),
        String((dev & 0xff) | ((dev >> 12) & 0xfff00)),
      ]);
      expect(mk.status, `mknod: ${mk.stderr}`).to.equal(0);
      chownSync(kvm, NOBODY, NOBODY);
      const setpriv = [
        'setpriv',
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        '--clear-groups',
        '--inh-caps=-all',
        '--bounding-set=-all',
      ];
      r = runProbeVm('status', ['--seccomp', 'true'], {
        cwd: project,
        wrap: (argv) => [
          'unshare',
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          `mount --bind ${kvm} /dev/kvm && mount --bind ${root} ${project} && cd ${project} && exec "$@"`,
          'sh',
          ...setpriv,
          ...argv,
        ],
      });
    } else {
      r = runProbeVm('status', ['--seccomp', 'true']);
    }
    if (work) rmSync(work, { recursive: true, force: true });
    expect(r.status, `exit ${r.status}: ${r.stderr}`).to.equal(0);
    const st = statusFields(probeLines(r.stderr).status);
    expect(st.Uid?.split(' ')[0], r.stderr).to.not.equal('0');
    expect(st.CapEff, r.stderr).to.equal('0000000000000000');
    expect(st.NoNewPrivs, r.stderr).to.equal('1');
    expect(st.Seccomp, r.stderr).to.equal('2');
    if (isRoot)
      expect(st.Uid.split(' ')).to.deep.equal([String(NOBODY), String(NOBODY), String(NOBODY), String(NOBODY)]);
  });
});
