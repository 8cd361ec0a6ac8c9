import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mochaArgs, tierFiles, tierOf } from './tiers.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('run-tiers file selection', () => {
  it('puts each test file in exactly one tier by its name', () => {
    expect(tierOf('a/b.test.js')).to.equal('unit');
    expect(tierOf('a/b.kvm.test.js')).to.equal('kvm');
    expect(tierOf('a/b.linux.test.js')).to.equal('linux');
    expect(tierOf('a/b.sandbox.test.js')).to.equal('sandbox');
  });

  it('finds tier files under the compiled tree, never in node_modules or nested build folders', () => {
    const root = mkdtempSync(join(tmpdir(), 'tiers-'));
    try {
      for (const f of [
        'x/a.test.js',
        'x/b.kvm.test.js',
        'y/c.linux.test.js',
        'node_modules/m/d.test.js',
        '.build/o/e.test.js',
        'x/f.test.js.map',
        'x/g.js',
      ]) {
        mkdirSync(join(root, f, '..'), { recursive: true });
        writeFileSync(join(root, f), '');
      }
      const rel = (t: 'unit' | 'kvm' | 'linux') => tierFiles(root, t).map((f) => relative(root, f));
      expect(rel('unit')).to.deep.equal(['x/a.test.js']);
      expect(rel('kvm')).to.deep.equal(['x/b.kvm.test.js']);
      expect(rel('linux')).to.deep.equal(['y/c.linux.test.js']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a guest-tier file that leaves a server open still ends when its tests are done (no wait for the watchdog)', async function () {
    this.timeout(60_000);
    const dir = mkdtempSync(join(tmpdir(), 'tiers-exit-'));
    try {
      const file = join(dir, 'leak.linux.test.js');
      writeFileSync(
        file,
        "import net from 'node:net';\n" +
          "describe('a test that fails to clean up', () => { it('leaves a listening server', () => " +
          '{ net.createServer().listen(0); }); });\n',
      );
      const report = join(dir, 'report.json');
      const child = spawn(process.execPath, mochaArgs(repoRoot, [file], report, 'linux', false), {
        cwd: repoRoot,
        stdio: 'ignore',
      });
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(-1);
        }, 30_000);
        child.once('exit', (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      expect(code, 'mocha still running 30 s after its only test passed').to.equal(0);
      expect(existsSync(report)).to.equal(true);
      expect(readFileSync(report, 'utf8')).to.contain('leaves a listening server');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
