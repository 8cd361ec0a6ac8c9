import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initScript } from './init-script.js';

describe('guestkit /init', () => {
  const text = initScript();

  it('is valid sh', () => {
    const r = spawnSync('sh', ['-n'], { input: text, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
  });

  it('writes the boot marker at the BOOT_TIMER address and prints the markers', () => {
    expect(text).to.include('devmem 0xd0000000 8 123');
    for (const m of ['TSVMM-INIT-OK', 'TSVMM-RESULT-BEGIN', 'TSVMM-RESULT-END', 'TSVMM-EXIT $rc'])
      expect(text).to.include(m);
    expect(text).to.include('poweroff -f');
  });

  it('hands <module>.<param>= words from the command line to insmod', () => {
    // run the modparams function alone against a fake command line
    const fn = /modparams\(\) \{[\s\S]*?\n\}\n/.exec(text)![0];
    const r = spawnSync(
      'sh',
      [
        '-c',
        `${fn}\nCMDLINE='console=ttyS0 virtio_mmio.device=4K@0xd0001000:5 virtio-mmio.device=4K@0xd0002000:6 kvm_amd.nested=1'\nmodparams virtio_mmio; modparams kvm-amd`,
      ],
      { encoding: 'utf8' },
    );
    expect(r.stdout.trim().split('\n')).to.deep.equal(['device=4K@0xd0001000:5', 'device=4K@0xd0002000:6', 'nested=1']);
  });
});

describe('guestkit /init: the console is drained before a session on it ends', () => {
  const text = initScript();

  /** Runs `lines` of /init with stub setsid/cttyhack/stty on PATH; returns the log of what ran, in order. */
  function runWithStubs(lines: string): string[] {
    const dir = mkdtempSync(join(tmpdir(), 'init-drain-'));
    try {
      const log = join(dir, 'log');
      const stub = (name: string, body: string): void => {
        writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      };
      stub('setsid', 'exec "$@"');
      stub('cttyhack', 'exec "$@"');
      stub('stty', `echo "stty $*" >> '${log}'; [ "$1" = -g ] && echo saved-settings; exit 0`);
      writeFileSync(join(dir, 'script'), `echo "script ran" >> '${log}'\nexit 3\n`);
      const r = spawnSync('sh', ['-c', `${lines}\necho "rc=$rc" >> '${log}'`], {
        encoding: 'utf8',
        input: '',
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, SCRIPT: join(dir, 'script') },
      });
      expect(r.status, r.stderr).to.equal(0);
      return readFileSync(log, 'utf8').trim().split('\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('the session leader on the console waits for the output to drain (stty with TCSADRAIN) before it exits', () => {
    const drain = /^DRAIN=.*$/m.exec(text)?.[0];
    const session = /^ *setsid cttyhack .*$/m.exec(text)?.[0];
    expect(drain, '/init defines DRAIN').to.be.a('string');
    expect(session, '/init starts the console session with setsid cttyhack').to.be.a('string');
    const log = runWithStubs(`${drain}\n${session}\nrc=$?`);
    expect(log).to.deep.equal(['script ran', 'stty -g', 'stty saved-settings', 'rc=3']);
  });

  it('drains the console again after the exit marker, before sync and poweroff/reboot', () => {
    const tail = text.slice(text.indexOf('echo "TSVMM-EXIT $rc"'));
    const drainAt = tail.indexOf('eval "$DRAIN"');
    expect(drainAt).to.be.greaterThan(0);
    expect(drainAt).to.be.lessThan(tail.indexOf('poweroff -f'));
    expect(drainAt).to.be.lessThan(tail.indexOf('sync'));
  });
});
