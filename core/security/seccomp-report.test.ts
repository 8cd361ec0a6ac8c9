import { expect } from 'chai';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seccompRecords } from './seccomp-report.js';
import { hostSyscalls } from './syscalls.js';

describe('core/security seccomp-report: audit records from the kernel log', () => {
  it('reads type=1326 records (log and kill), by pid, with the names of this host ABI', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsvmm-kmsg-'));
    const abi = hostSyscalls()!;
    const rec = (pid: number, nr: number, code: string) =>
      `5,812,9134,-;audit: type=1326 audit(1.2:3): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=${pid} ` +
      `comm="node" exe="/usr/local/bin/node" sig=${code === '0x80000000' ? 31 : 0} arch=c00000b7 syscall=${nr} ` +
      `compat=0 ip=0xffff8a2c code=${code}\n`;
    writeFileSync(
      join(dir, 'kmsg'),
      rec(7, abi.allowed.read!, '0x7ffc0000') +
        '6,813,9135,-;virtio_net virtio0 eth0: renamed\n' +
        rec(8, abi.others.execve!, '0x7ffc0000') +
        rec(7, abi.others.ptrace!, '0x80000000'),
    );
    const fd = openSync(join(dir, 'kmsg'), 'r');
    try {
      expect(seccompRecords(fd, [7])).to.deep.equal([
        { pid: 7, syscall: abi.allowed.read, name: 'read', action: 0x7ffc0000 },
        { pid: 7, syscall: abi.others.ptrace, name: 'ptrace', action: 0x80000000 },
      ]);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
