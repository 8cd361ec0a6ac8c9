import { appendFileSync, chmodSync, chownSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** The unprivileged user a linux-tier test runs the VMM as inside the sandbox (vmmUserInSandbox creates it). */
export const VMM_USER = { name: 'tsvmm', uid: 990 } as const;

/** The privilege fields of a /proc status file: Uid, Gid, Groups, CapEff, CapPrm, NoNewPrivs, Seccomp(_filters). */
export function privilegeStatus(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(Uid|Gid|Groups|CapEff|CapPrm|NoNewPrivs|Seccomp|Seccomp_filters):\s*(.*)$/.exec(l);
    if (m) out[m[1]!] = m[2]!.replace(/\s+/g, ' ').trim();
  }
  return out;
}

/** How many threads of `pid` carry how many seccomp filters ({ '1': 10, '2': 4 }: four threads have two). */
export function filtersPerThread(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const n = privilegeStatus(`/proc/${pid}/task/${tid}/status`).Seccomp_filters ?? '?';
    out[n] = (out[n] ?? 0) + 1;
  }
  return out;
}

/** Makes `p` and every folder above it reachable by others (o+x on folders, o+r on `p`). */
function reachable(p: string): void {
  for (let d = dirname(p); d !== dirname(d); d = dirname(d)) chmodSync(d, statSync(d).mode | 0o001);
  chmodSync(p, statSync(p).mode | (statSync(p).isDirectory() ? 0o005 : 0o004));
}

/**
 * Inside the sandbox's L1 (root; its root filesystem is thrown away after the run): sets up what an administrator
 * does once so that an ordinary user can run VMs: the user VMM_USER in the group that owns /dev/kvm (`kvm`), /dev/kvm
 * and /dev/net/tun owned by that group with mode 0660, and the files the test names reachable (`read`: the
 * project, Node, the guest kit) or owned by the user (`own`: its scratch folder and disks). Returns uid and gid to
 * start the VMM with (no supplementary groups, so no capabilities either).
 */
export function vmmUserInSandbox(o: { read: string[]; own: string[] }): { uid: number; gid: number } {
  if (process.env.TSVMM_IN_SANDBOX !== '1' || process.getuid?.() !== 0)
    throw new Error('vmmUserInSandbox changes system files: only as root inside the sandbox (TSVMM_IN_SANDBOX=1)');
  const group = /^kvm:x:(\d+):/m.exec(readFileSync('/etc/group', 'utf8'));
  if (!group) throw new Error('no kvm group in /etc/group of L1');
  const gid = Number(group[1]);
  if (!new RegExp(`^${VMM_USER.name}:`, 'm').test(readFileSync('/etc/passwd', 'utf8')))
    appendFileSync('/etc/passwd', `${VMM_USER.name}:x:${VMM_USER.uid}:${gid}:VMM user:/nonexistent:/bin/false\n`);
  for (const dev of ['/dev/kvm', '/dev/net/tun']) {
    try {
      chownSync(dev, 0, gid);
      chmodSync(dev, 0o660);
    } catch (e) {
      if (dev === '/dev/kvm') throw e; // tun is for tap back ends only
    }
  }
  for (const p of o.read) reachable(p);
  for (const p of o.own) {
    reachable(p);
    chownSync(p, VMM_USER.uid, gid);
  }
  return { uid: VMM_USER.uid, gid };
}
