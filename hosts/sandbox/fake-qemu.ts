import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Test stand-ins for qemu-system-x86_64 (unit tests of the boot helper and of `vmm run --sandbox`): a shell script
 * playing a guest, `body` its lines; it records its pid in `dir`/pid. `name` keeps several in one folder apart.
 */
export function fakeQemu(dir: string, body: string, name = 'fake-qemu'): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\necho $$ > ${join(dir, 'pid')}\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/**
 * A fake QEMU whose guest reaches init, connects to the heartbeat socket QEMU was given and runs `js` in Node, with
 * `hb` the connection (write `TSVMM-L1-ALIVE\n` to beat).
 */
export function beatingQemu(dir: string, js: string, name?: string): string {
  return fakeQemu(
    dir,
    [
      'echo TSVMM-INIT-OK',
      'SOCK=$(echo "$@" | sed -n \'s/.*socket,id=tsvmm-hb,path=\\([^ ]*\\).*/\\1/p\')',
      `exec ${JSON.stringify(process.execPath)} -e "const hb = require('net').connect(process.argv[1]); ${js}" "$SOCK"`,
    ].join('\n'),
    name,
  );
}
