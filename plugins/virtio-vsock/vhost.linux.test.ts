/**
 * Linux tier: ONE boot of the guest kit kernel on the micro host with virtio-vsock served by the host kernel's
 * vhost-vsock (L1 loads vhost_vsock; `backend: vhost`); the guest's vmw_vsock_virtio_transport and L1's AF_VSOCK
 * sockets talk, no Unix socket in between:
 *  - guest → host: L1 listens on port 5000 (vsockio listen), the guest connects to CID 2 port 5000 and both
 *    sides see the other's line;
 *  - host → guest: the guest listens on port 52, L1 connects to the guest's CID 3 port 52 and gets the echo.
 * The VMM is `bin/vmm.js run` in a child process, killed at the deadline; failures show the console's tail.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { guestTool, parseGuestOutput } from '../../test/harness/guest-kit.js';
import { deadline } from '../../test/guest/deadline.js';
import { guestResult, guestScope, microConfig, spawnVmm } from '../../test/guest/guest-vm.js';

const SCRIPT = `
vsockio listen 52 &
LP=$!
vsockio connect 2 5000 hello-from-guest
wait $LP
echo done=1
`;

/** vsockio run in L1 (the same static tool as in the guest): resolves with its output once it ended. */
function hostVsockio(args: string[], started: ChildProcess[]): { out: () => string; ended: Promise<string> } {
  const p = spawn(guestTool('vsockio'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(p);
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const ended = new Promise<string>((resolve) => p.on('close', () => resolve(out)));
  p.on('error', (err) => (out += `spawn failed: ${err.message}\n`));
  return { out: () => out, ended };
}

describe('virtio-vsock over the kernel vhost-vsock in a Linux guest (linux tier)', function () {
  this.timeout(400_000);
  const scope = guestScope('vhost-vsock');
  const started: ChildProcess[] = [];
  after(() => {
    for (const p of started) p.kill('SIGKILL'); // no-op for those that ended
  });

  it('guest → host and host → guest streams between the guest and AF_VSOCK sockets of the host', async () => {
    const { kit, dir } = scope;
    expect(fs.existsSync('/dev/vhost-vsock'), 'L1 has no /dev/vhost-vsock (vhost_vsock not loaded?)').to.equal(true);
    const listener = hostVsockio(['listen', '5000'], started);
    await deadline(
      new Promise<void>((resolve, reject) => {
        const t = setInterval(() => {
          if (listener.out().includes('listen-ready=5000')) resolve();
          else if (/vsockio-error|spawn failed/.test(listener.out())) reject(new Error(listener.out()));
          else return;
          clearInterval(t);
        }, 50);
      }),
      20_000,
      'the host listener on vsock port 5000',
    );
    const config = microConfig({
      kit,
      dir,
      name: 'vhost-vsock',
      script: SCRIPT,
      vcpus: 1,
      memory: '256M',
      files: { 'bin/vsockio': fs.readFileSync(guestTool('vsockio')) },
      plugins: [{ name: 'virtio-vsock', id: 'vsock0', config: { backend: 'vhost', guestCid: 3 } }],
    });
    const file = path.join(dir, 'vm.yaml');
    fs.writeFileSync(file, JSON.stringify(config));
    let connect: ReturnType<typeof hostVsockio> | undefined;
    const vmm = spawnVmm(file, {
      cwd: dir,
      onOutput: (stdout) => {
        if (!connect && stdout.includes('listen-ready=52'))
          connect = hostVsockio(['connect', '3', '52', 'hello-from-host'], started);
      },
    });
    started.push(vmm.child);
    const end = await deadline(vmm.ended, 300_000, 'the guest running its script', () => vmm.child.kill('SIGKILL'));
    const host = connect ? await deadline(connect.ended, 30_000, 'the host connect to the guest') : '(never ran)';
    const heard = await deadline(listener.ended, 5_000, 'the host listener ending').catch((e: Error) => e.message);
    const evidence = `VMM ${end.code ?? end.signal} after ${end.seconds} s; host connect: ${host}; host listener: ${heard}\n${end.text.slice(-4000)}`;
    const out = parseGuestOutput(end.stdout);
    expect(out.resultComplete, evidence).to.equal(true);
    const r = guestResult(out.result ?? '');
    expect(r.get('done'), evidence).to.equal('1');
    // guest → host
    expect(heard, evidence).to.contain('listen-got=hello-from-guest');
    expect(r.get('connect-reply'), evidence).to.equal('echo:hello-from-guest');
    // host → guest
    expect(r.get('listen-got'), evidence).to.equal('hello-from-host');
    expect(host, evidence).to.contain('connect-reply=echo:hello-from-host');
    console.log(`      vhost-vsock linux: ${end.seconds} s`);
  });
});
