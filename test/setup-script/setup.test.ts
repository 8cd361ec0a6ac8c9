import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';

const root = buildLocations().repoRoot;
const setup = path.join(root, 'tools', 'setup', 'setup.sh');

/**
 * Runs setup.sh --packages-only with fake `id`, `dpkg-query`, `dpkg` (foreign architectures `foreign`) and
 * `apt-get` first on PATH; aptCalls logs apt-get's and dpkg's arguments in order (dpkg's prefixed `dpkg `).
 */
function runSetup(
  uid: number,
  installed: string[],
  foreign = ['arm64'],
): { out: string; aptCalls: string[]; status: number | null } {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-setup-'));
  const log = path.join(bin, 'apt.log');
  const script = (body: string) => `#!/bin/sh\n${body}\n`;
  fs.writeFileSync(path.join(bin, 'id'), script(`echo ${uid}`), { mode: 0o755 });
  fs.writeFileSync(
    path.join(bin, 'dpkg-query'),
    script(
      `for p in "$@"; do :; done; case " ${installed.join(' ')} " in *" $p "*) echo "install ok installed";; ` +
        `*) exit 1;; esac`,
    ),
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(bin, 'apt-get'), script(`echo "$*" >> ${log}`), { mode: 0o755 });
  fs.writeFileSync(
    path.join(bin, 'dpkg'),
    script(
      `case "$1" in --print-foreign-architectures) printf '${foreign.map((a) => `${a}\\n`).join('')}';; ` +
        `*) echo "dpkg $*" >> ${log};; esac`,
    ),
    { mode: 0o755 },
  );
  try {
    const r = spawnSync('bash', [setup, '--packages-only'], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      encoding: 'utf8',
      timeout: 30_000,
    });
    const aptCalls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [];
    return { out: r.stdout + r.stderr, aptCalls, status: r.status };
  } finally {
    fs.rmSync(bin, { recursive: true, force: true });
  }
}

describe('npm run setup: the Debian packages (tools/setup)', function () {
  this.timeout(60_000);
  const list = spawnSync(path.join(root, 'tools', 'setup', 'packages.sh'), { encoding: 'utf8' })
    .stdout.trim()
    .split('\n');

  it('one list: the sandbox tools are in it, and .ci/run installs that list itself', () => {
    expect(list).to.include.members(['qemu-system-x86', 'qemu-utils', 'busybox-static', 'e2fsprogs']);
    expect(list.every((p) => /^[a-z0-9][a-z0-9.+-]*$/.test(p))).to.equal(true);
    const ci = fs.readFileSync(path.join(root, '.ci', 'run'), 'utf8');
    expect(ci).to.match(/apt-get install -y --no-install-recommends \$\(tools\/setup\/packages\.sh\)/);
    expect(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.setup).to.equal(
      'bash tools/setup/setup.sh',
    );
  });

  it('as root, installs exactly the missing packages with apt-get', () => {
    const r = runSetup(0, list.slice(2));
    expect(r.status).to.equal(0);
    expect(r.aptCalls).to.deep.equal(['update', `install -y --no-install-recommends ${list.slice(0, 2).join(' ')}`]);
  });

  it('as another user, prints the exact apt-get command and installs nothing', () => {
    const r = runSetup(1000, list.slice(1));
    expect(r.status).to.equal(0);
    expect(r.aptCalls).to.deep.equal([]);
    expect(r.out).to.contain(`sudo apt-get update && sudo apt-get install -y --no-install-recommends ${list[0]}\n`);
  });

  it('with everything installed, runs no apt-get at all (CI installed them before)', () => {
    const r = runSetup(0, list);
    expect(r.aptCalls).to.deep.equal([]);
    expect(r.out).to.contain('host packages: all installed');
  });

  it('as root, adds the arm64 architecture once (the arm64 guest kit downloads <pkg>:arm64), then updates', () => {
    const r = runSetup(0, list, ['i386']);
    expect(r.status).to.equal(0);
    expect(r.aptCalls).to.deep.equal(['dpkg --add-architecture arm64', 'update']);
    // already there: nothing (idempotent; the other tests run with arm64 present and see no dpkg call)
    expect(runSetup(0, list, ['i386', 'arm64']).aptCalls).to.deep.equal([]);
  });

  it('as another user without arm64, prints the dpkg command and changes nothing', () => {
    const r = runSetup(1000, list, []);
    expect(r.status).to.equal(0);
    expect(r.aptCalls).to.deep.equal([]);
    expect(r.out).to.contain('sudo dpkg --add-architecture arm64 && sudo apt-get update');
  });
});
