import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectLayout } from '../../hosts/sandbox/sandbox.js';

/**
 * Least privilege: the VMM needs no root, only access to /dev/kvm. Run as root (CI), the test gives
 * the VMM a private mount namespace in which /dev/kvm is a node of the same device owned by `nobody`
 * (the host's /dev/kvm is not touched), the project bind-mounted where `nobody` can reach it, and
 * starts it through setpriv as nobody:nogroup with no capabilities at all (empty bounding set). Run as
 * an ordinary user, the test runs the VMM as that user. Either way the kvm tier's tiny guest must boot
 * (KVM_RUN until its `hlt` gives exit code 0), and the process that execs the VMM shows no privilege.
 */
const NOBODY = 65534;

function statusLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of text.split('\n')) {
    const m = /^(Uid|Gid|CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):\s*(.*)$/.exec(l);
    if (m) out[m[1]] = m[2].trim();
  }
  return out;
}

describe('least privilege: the VMM as an ordinary user', function () {
  this.timeout(60_000);
  const { root } = projectLayout();
  const yaml = 'core/testing/fixtures/tiny-vm.yaml';
  // the status of the shell that then execs the VMM in place (same uid and capabilities)
  const script = (dir: string) => `cd ${dir} && grep -E '^(Uid|Gid|CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/$$/status >&2 && ` +
    `VMM_BUNDLE=0 exec ${process.execPath} bin/vmm.js run --force ${yaml}`;

  it('boots the tiny guest with only /dev/kvm: uid nobody, no capabilities', () => {
    const isRoot = process.getuid?.() === 0;
    let r;
    let work: string | undefined;
    if (isRoot) {
      work = mkdtempSync(join(tmpdir(), 'tsvmm-nonroot-'));
      chmodSync(work, 0o755); // nobody must reach the project's mount point
      const kvm = join(work, 'kvm'), project = join(work, 'project');
      mkdirSync(project);
      const dev = statSync('/dev/kvm').rdev;
      const mk = spawnSync('mknod', [kvm, 'c', String(Math.floor(dev / 256) & 0xfff), String((dev & 0xff) | ((dev >> 12) & 0xfff00))]);
      expect(mk.status, `mknod: ${mk.stderr}`).to.equal(0);
      chownSync(kvm, NOBODY, NOBODY);
      const inner = `mount --bind ${kvm} /dev/kvm && mount --bind ${root} ${project} && ` +
        `exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups --inh-caps=-all --bounding-set=-all sh -c "${script(project)}"`;
      r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', inner], { encoding: 'utf8', timeout: 50_000 });
    } else {
      r = spawnSync('sh', ['-c', script(root)], { encoding: 'utf8', timeout: 50_000 });
    }
    if (work) rmSync(work, { recursive: true, force: true });
    expect(r.status, `exit ${r.status}: ${r.stderr}`).to.equal(0);
    const st = statusLines(r.stderr);
    expect(st.Uid?.split(/\s+/)[0], JSON.stringify(st)).to.not.equal('0');
    expect(st.CapEff, JSON.stringify(st)).to.equal('0000000000000000');
    if (isRoot) {
      expect(st.Uid.split(/\s+/)).to.deep.equal([String(NOBODY), String(NOBODY), String(NOBODY), String(NOBODY)]);
      expect(st.CapBnd).to.equal('0000000000000000');
    }
  });
});
