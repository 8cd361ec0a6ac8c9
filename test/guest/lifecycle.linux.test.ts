/**
 * Linux tier, one run of bin/vmm.js as users start it, for how a VM lives and ends:
 *  - 4 vCPUs and 5 GiB of RAM (machine.overcommit: the sandbox L1 has ~3.5 GiB; the guest touches little): the guest
 *    sees the RAM above the 32-bit hole (/proc/iomem, MemTotal), and guestio highmem touches
 *    64 MiB whose physical frames lie above 4 GiB (the kernel serves user pages from ZONE_NORMAL
 *    first) and reads the pattern back;
 *  - machine.onReset: restart: the first boot records itself on a small disk and reboots; the VM
 *    is assembled again and the second boot finds the record;
 *  - SIGTERM: the second boot waits; SIGTERM to the VMM stops it cleanly with exit status 143;
 *  - least privilege: in the sandbox the VMM runs as an ordinary user (test/privilege/unprivileged.ts: a user in the
 *    group that owns /dev/kvm, nothing else); before the SIGTERM the test reads the running VMM's /proc status: not
 *    root, no capabilities, no_new_privs, seccomp filter mode, one filter on every thread and a second (the vCPU
 *    threads' own) on each of the 4 vCPU threads.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { compiledDir, guestResult, guestScope, microConfig, repoRoot, spawnVmm } from './guest-vm.js';
import { filtersPerThread, privilegeStatus, vmmUserInSandbox } from '../privilege/unprivileged.js';

const GiB = 2 ** 30;
const HIGH_MIB = 64;

describe('a VM lives and ends as users run it: 4 vCPUs, RAM above 4 GiB, restart on reset, SIGTERM (linux tier)', function () {
  this.timeout(600_000);
  const g = guestScope('lifecycle-linux');

  it('boots twice (reset -> restart), uses RAM above 4 GiB, and SIGTERM stops it with 143', async () => {
    const { kit, dir } = g;
    const state = path.join(dir, 'state.img');
    fs.writeFileSync(state, Buffer.alloc(1 << 20));
    const script = `
S=/dev/vda
mark=$(dd if=$S bs=6 count=1 2>/dev/null)
echo "boot-mark=[$mark]"
if [ "$mark" != "boot-1" ]; then
  echo "nproc=$(nproc)"
  echo "memtotal-kb=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
  echo "iomem-high=$(grep 'System RAM' /proc/iomem | grep -c '^ *[0-9a-f]\\{9,\\}-')"
  guestio highmem ${HIGH_MIB}
  printf boot-1 | dd of=$S conv=fsync 2>/dev/null
  echo first-boot-done
  reboot -f
  sleep 60
fi
echo second-boot
echo ready-for-sigterm
sleep 600
echo sigterm-did-not-come
`;
    const config = microConfig({
      kit,
      dir,
      name: 'lifecycle',
      script,
      vcpus: 4,
      memory: '5G',
      overcommit: true,
      onReset: 'restart',
      plugins: [{ name: 'raw-disk' }, { name: 'virtio-blk', id: 'vda', config: { path: state, serial: 'state' } }],
    });
    const cfg = path.join(dir, 'lifecycle.yaml');
    fs.writeFileSync(cfg, stringify(config));
    // in the sandbox: as an ordinary user (outside it, as whoever runs the tests)
    const user =
      process.env.TSVMM_IN_SANDBOX === '1'
        ? vmmUserInSandbox({ read: [repoRoot(), compiledDir(), process.execPath, kit.vmlinux], own: [dir, state] })
        : undefined;
    let termAt = 0;
    let status: Record<string, string> = {};
    let filters: Record<string, number> = {};
    const vmm = spawnVmm(cfg, {
      cwd: dir,
      user,
      onOutput: (stdout, child) => {
        if (!termAt && /^ready-for-sigterm\r?$/m.test(stdout)) {
          status = privilegeStatus(`/proc/${child.pid}/status`);
          filters = filtersPerThread(child.pid!);
          termAt = Date.now();
          child.kill('SIGTERM');
        }
      },
    });
    const deadline = setTimeout(() => vmm.child.kill('SIGKILL'), 540_000);
    const r = await vmm.ended;
    clearTimeout(deadline);
    const tail = `exit ${r.code} ${r.signal}; output tail:\n${r.text.slice(-4000)}`;
    const stopS = termAt ? ((Date.now() - termAt) / 1000).toFixed(1) : '-';
    console.log(`      two boots until SIGTERM: ${r.seconds.toFixed(1)} s; stop after SIGTERM: ${stopS} s`);
    console.log(
      `      the running VMM: ${JSON.stringify(status)}; threads per filter count: ${JSON.stringify(filters)}`,
    );
    const boots = r.stdout.split('TSVMM-INIT-OK').length - 1;
    expect(boots, tail).to.equal(2);
    // the first boot's result: everything before its reboot
    const first = guestResult(r.stdout.slice(0, r.stdout.indexOf('first-boot-done')));
    expect(first.get('nproc'), tail).to.equal('4');
    expect(Number(first.get('memtotal-kb')) * 1024).to.be.greaterThan(4 * GiB); // 5 GiB less what the kernel keeps
    expect(Number(first.get('iomem-high')), 'a System RAM range above 4 GiB in /proc/iomem').to.be.greaterThan(0);
    expect(first.get('highmem-errors')).to.equal('0');
    expect(first.get('highmem-present')).to.equal(String((HIGH_MIB << 20) / 4096));
    const pages = (HIGH_MIB << 20) / 4096;
    expect(Number(first.get('highmem-above4g')), 'pages whose frames lie above 4 GiB').to.be.greaterThan(pages / 2);
    // within guest RAM (5 GiB + the 1 GiB hole)
    expect(parseInt(first.get('highmem-maxaddr') ?? '0', 16)).to.be.lessThan(5 * GiB + GiB);
    // the second boot found what the first wrote, then SIGTERM ended the VMM cleanly
    expect(r.stdout, tail).to.match(/boot-mark=\[boot-1\]/);
    expect(r.stdout).to.include('second-boot');
    expect(termAt, tail).to.be.greaterThan(0);
    expect(r.stdout).to.not.include('sigterm-did-not-come');
    expect(r.signal, tail).to.equal(null);
    expect(r.code, tail).to.equal(143);
    expect(fs.readFileSync(state).subarray(0, 6).toString('latin1')).to.equal('boot-1');
    // least privilege, read while the second boot ran
    if (user) expect(status.Uid, tail).to.equal(`${user.uid} ${user.uid} ${user.uid} ${user.uid}`);
    if (user || process.getuid?.() !== 0) expect(status.CapEff, tail).to.equal('0000000000000000');
    expect(status.NoNewPrivs, tail).to.equal('1');
    expect(status.Seccomp, tail).to.equal('2');
    expect(filters['2'], 'vCPU threads with their own filter on the process filter').to.equal(4);
    expect(Object.keys(filters).sort(), 'every thread has the process filter').to.deep.equal(['1', '2']);
  });
});
