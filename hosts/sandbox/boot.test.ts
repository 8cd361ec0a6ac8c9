import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootVm, describeBoot, qemuArgv } from './boot.js';
import { beatingQemu as beatingQemuIn, fakeQemu } from './fake-qemu.js';

/** Running (a zombie left for a non-reaping pid 1 counts as gone). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('sandbox QEMU boot helper', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'boot-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('collects the script output and exit status from the markers', async () => {
    const qemu = fakeQemu(
      dir,
      'printf "booting\\r\\nTSVMM-INIT-OK\\r\\nTSVMM-RESULT-BEGIN\\r\\nhi\\r\\nTSVMM-RESULT-END\\r\\nTSVMM-EXIT 4\\r\\n"',
    );
    const r = await bootVm({ qemu, accel: 'kvm', kernel: '/k', timeoutMs: 10_000 });
    expect(r).to.include({ status: 'exited', initReached: true, exitCode: 4, qemuExitCode: 0, result: 'hi' });
    expect(describeBoot(r)).to.match(/script exited with 4/);
  });

  it('kills QEMU at the time limit and says the guest never reached init', async () => {
    const qemu = fakeQemu(dir, 'echo "[0.0] Linux version 6.1"\nexec sleep 60');
    const r = await bootVm({ qemu, accel: 'tcg', kernel: '/k', timeoutMs: 1500 });
    expect(r.status).to.equal('timeout');
    expect(r.initReached).to.equal(false);
    const report = describeBoot(r, 'L2');
    expect(report).to.match(/^L2: timed out after \d+\.\d s without reaching init/);
    expect(report).to.include('Linux version 6.1');
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    expect(alive(pid), 'fake QEMU still running').to.equal(false);
  });

  it('kills a guest whose console stays silent, while a guest that keeps talking runs on', async () => {
    const frozen = fakeQemu(dir, 'echo TSVMM-INIT-OK\nexec sleep 60');
    const r = await bootVm({ qemu: frozen, accel: 'tcg', kernel: '/k', timeoutMs: 20_000, silenceTimeoutMs: 800 });
    expect(r.status).to.equal('silent');
    expect(r.durationMs).to.be.below(10_000);
    expect(describeBoot(r, 'L1')).to.match(/^L1: the console stayed silent/);
    // Talks for ~3.2 s, longer than its 2.5 s silence limit, with 0.2 s gaps: a wide margin on a loaded machine.
    const talking = fakeQemu(
      dir,
      'for i in $(seq 16); do echo tick; sleep 0.2; done\necho TSVMM-INIT-OK\necho TSVMM-EXIT 0',
    );
    const t = await bootVm({ qemu: talking, accel: 'tcg', kernel: '/k', timeoutMs: 20_000, silenceTimeoutMs: 2500 });
    expect(t).to.include({ status: 'exited', exitCode: 0 });
  });

  const beatingQemu = (js: string) => beatingQemuIn(dir, js);

  it('heartbeat: kills a guest whose beats stop, and one that never beats, saying which', async () => {
    const hb = { firstBeatMs: 3000, gapMs: 800 };
    const stopped = beatingQemu("hb.write('TSVMM-L1-ALIVE\\n'); setTimeout(() => {}, 60000);");
    const r = await bootVm({ qemu: stopped, accel: 'tcg', kernel: '/k', timeoutMs: 20_000, heartbeat: hb });
    expect(r.status, r.stderr).to.equal('frozen');
    expect(describeBoot(r, 'L1')).to.match(/^L1: froze \(no heartbeat for \d+ s \(after 1\)\); QEMU killed after/);
    const never = fakeQemu(dir, 'echo TSVMM-INIT-OK\nexec sleep 60');
    const n = await bootVm({ qemu: never, accel: 'tcg', kernel: '/k', timeoutMs: 20_000, heartbeat: hb });
    expect(n.status).to.equal('frozen');
    expect(n.killReason).to.match(/^no heartbeat within \d+ s of starting$/);
    expect(alive(Number(readFileSync(join(dir, 'pid'), 'utf8')))).to.equal(false);
  });

  it('heartbeat: a guest that keeps beating while its console is quiet runs to its end', async () => {
    const beating = beatingQemu(
      "let i = 0; const t = setInterval(() => { hb.write('TSVMM-L1-ALIVE\\n');" +
        " if (++i === 8) { clearInterval(t); console.log('TSVMM-EXIT 0'); hb.end(); } }, 300);",
    );
    const r = await bootVm({
      qemu: beating,
      accel: 'tcg',
      kernel: '/k',
      timeoutMs: 20_000,
      heartbeat: { firstBeatMs: 3000, gapMs: 1500 },
    });
    expect(r, r.stderr).to.include({ status: 'exited', exitCode: 0 });
    expect(r.argv.join(' ')).to.match(
      /-chardev socket,id=tsvmm-hb,path=\S+\/hb\.sock -device isa-serial,chardev=tsvmm-hb,iobase=0x2f8,irq=3/,
    );
  });

  it('abort: kills QEMU and reports the reason', async () => {
    const qemu = fakeQemu(dir, 'echo started\nexec sleep 60');
    const abort = new AbortController();
    const r = await bootVm({
      qemu,
      accel: 'tcg',
      kernel: '/k',
      timeoutMs: 20_000,
      abort: abort.signal,
      onOutput: () => abort.abort(new Error('virtiofsd serving /d ended')),
    });
    expect(r.status).to.equal('aborted');
    expect(describeBoot(r, 'L1')).to.match(/^L1: stopped after [\d.]+ s: virtiofsd serving \/d ended/);
  });

  it('reports QEMU refusing a kernel, with its message', async () => {
    const qemu = fakeQemu(dir, 'echo "qemu-system-x86_64: linux kernel too old to load a ram disk" >&2\nexit 1');
    const r = await bootVm({ qemu, accel: 'kvm', kernel: '/k', timeoutMs: 10_000 });
    expect(r).to.include({ status: 'exited', initReached: false, qemuExitCode: 1 });
    const report = describeBoot(r);
    expect(report).to.match(/QEMU exited \(status 1\).*before the guest reached init/);
    expect(report).to.include('linux kernel too old');
  });

  it('reports a QEMU binary that does not exist', async () => {
    const r = await bootVm({ qemu: join(dir, 'no-such-qemu'), accel: 'kvm', kernel: '/k', timeoutMs: 10_000 });
    expect(r.status).to.equal('spawn-failed');
    expect(describeBoot(r)).to.match(/could not start .*no-such-qemu.*ENOENT/);
  });

  it('kills QEMU when the Node process gets SIGTERM', async function () {
    this.timeout(15_000);
    const qemu = fakeQemu(dir, 'echo started\nexec sleep 60');
    const bootJs = new URL('./boot.js', import.meta.url).href;
    const { spawn } = await import('node:child_process');
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { bootVm } from ${JSON.stringify(bootJs)}; bootVm({ qemu: ${JSON.stringify(qemu)}, accel: 'kvm', kernel: '/k', timeoutMs: 60000, onOutput: () => console.log('up') });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((res) => child.stdout!.once('data', () => res()));
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    expect(alive(pid)).to.equal(true);
    const code = await new Promise<number | null>((res) => {
      child.once('exit', (c) => res(c));
      child.kill('SIGTERM');
    });
    expect(code).to.equal(143);
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(pid), 'fake QEMU survived its parent').to.equal(false);
  });

  it('builds a command line with the machine, accelerator, kernel, initrd and append', () => {
    const a = qemuArgv({
      accel: 'kvm',
      kernel: '/vmlinux',
      initramfs: '/i.gz',
      append: 'console=ttyS0',
      timeoutMs: 1,
      machine: 'pc',
    });
    expect(a.join(' '))
      .to.include('-M pc -accel kvm -cpu host')
      .and.include('-kernel /vmlinux -initrd /i.gz -append console=ttyS0')
      .and.include('-no-reboot');
  });

  it('shared memory: guest RAM in a shared memfd the machine uses (for vhost-user back ends)', () => {
    const a = qemuArgv({ accel: 'tcg', kernel: '/k', timeoutMs: 1, memoryMiB: 768, sharedMemory: true }).join(' ');
    expect(a)
      .to.include('-M microvm,x-option-roms=off,rtc=on,memory-backend=tsvmm-ram')
      .and.include('-m 768')
      .and.include('-object memory-backend-memfd,id=tsvmm-ram,size=768M,share=on');
  });

  it('TCG: multi-threaded with -cpu max by default; an L1 experiment picks thread=single and another model', () => {
    expect(qemuArgv({ accel: 'tcg', kernel: '/k', timeoutMs: 1 }).join(' ')).to.include(
      '-accel tcg,thread=multi -cpu max',
    );
    const a = qemuArgv({ accel: 'tcg', kernel: '/k', timeoutMs: 1, tcgThread: 'single', cpuModel: 'EPYC' }).join(' ');
    expect(a).to.include('-accel tcg,thread=single -cpu EPYC');
  });
});
