import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { CpioBuilder, parseCpio } from './cpio.js';
import { skipUnlessCi } from '../../test/setup/environment.js';

describe('guestkit cpio (newc) writer', () => {
  const build = () =>
    new CpioBuilder()
      .file('init', '#!/bin/sh\n', 0o755)
      .symlink('bin/ls', '/bin/busybox')
      .chardev('dev/console', 5, 1)
      .file('lib/modules/v/kernel/a.ko', Buffer.from([1, 2, 3]));

  it('round-trips files, links and device nodes, adding parent folders', () => {
    const m = parseCpio(build().toBuffer());
    expect([...m.keys()]).to.include.members([
      'init',
      'bin',
      'bin/ls',
      'dev',
      'dev/console',
      'lib',
      'lib/modules',
      'lib/modules/v/kernel',
      'lib/modules/v/kernel/a.ko',
    ]);
    expect(Buffer.from(m.get('init')!.data).toString()).to.equal('#!/bin/sh\n');
    expect(m.get('init')!.mode).to.equal(0o100755);
    expect(Buffer.from(m.get('bin/ls')!.data).toString()).to.equal('/bin/busybox');
    expect(m.get('bin/ls')!.mode & 0o170000).to.equal(0o120000);
    expect(m.get('dev/console')!.mode & 0o170000).to.equal(0o020000);
    expect(Array.from(m.get('lib/modules/v/kernel/a.ko')!.data)).to.deep.equal([1, 2, 3]);
  });

  it('gzip output unpacks to the same archive', () => {
    const b = build();
    expect(gunzipSync(b.toGzip()).equals(b.toBuffer())).to.equal(true);
  });

  it('refuses paths that climb out of the archive', () => {
    expect(() => new CpioBuilder().file('../etc/passwd', 'x')).to.throw(/bad archive path/);
    expect(() => new CpioBuilder().file('/', 'x')).to.throw(/bad archive path/);
  });

  it('is read by GNU cpio', function () {
    if (spawnSync('cpio', ['--version']).status !== 0) skipUnlessCi(this, 'GNU cpio is not installed (Debian cpio)');
    const r = spawnSync('cpio', ['-t', '--quiet'], { input: build().toBuffer(), encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.split('\n')).to.include.members(['init', 'bin/ls', 'dev/console', 'lib/modules/v/kernel/a.ko']);
  });
});
