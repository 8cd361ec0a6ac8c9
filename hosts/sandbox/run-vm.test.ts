import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../core/cli/main.js';
import { ExitCode } from '../../core/vmm/exit-codes.js';
import { bootVm } from './boot.js';
import { beatingQemu } from './fake-qemu.js';
import { runVmInSandbox } from './run-vm.js';
import { projectLayout, sandboxReport, type SandboxOptions, type SandboxResult } from './sandbox.js';

/** A guest whose L1 beats once and then freezes (QEMU keeps running, the beats stop). */
const FREEZES = "hb.write('TSVMM-L1-ALIVE\\n'); setTimeout(() => {}, 60000);";
/** A guest whose L1 beats a few times and whose command ends with status 0. */
const RUNS = "hb.write('TSVMM-L1-ALIVE\\n'); setTimeout(() => { console.log('TSVMM-EXIT 0'); hb.end(); }, 300);";

describe('vmm run --sandbox: a frozen L1', () => {
  let dir: string;
  let stderr: string[];
  let write: typeof process.stderr.write;
  let exitCode: typeof process.exitCode;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'run-vm-test-'));
    stderr = [];
    write = process.stderr.write;
    exitCode = process.exitCode;
    process.stderr.write = ((s: string | Uint8Array) => stderr.push(String(s)) > 0) as typeof process.stderr.write;
  });
  afterEach(() => {
    process.stderr.write = write;
    process.exitCode = exitCode;
    rmSync(dir, { recursive: true, force: true });
  });

  /** `vmm run --sandbox hosts/micro.yaml` with a fake L1 that plays `plays` in turn (real heartbeat watch). */
  const vmmRunSandbox = async (plays: string[]) => {
    const commands: string[] = [];
    const fakeL1 = async (command: string, o: SandboxOptions): Promise<SandboxResult> => {
      const qemu = beatingQemu(dir, plays[commands.length] ?? 'process.exit(9)', `qemu-${commands.length}`);
      commands.push(command);
      const r = await bootVm({ qemu, accel: 'tcg', kernel: '/k', timeoutMs: 20_000, heartbeat: o.heartbeat });
      return { ...r, report: sandboxReport(r) };
    };
    const config = join(projectLayout().root, 'hosts', 'micro.yaml');
    const code = await main(['node', 'vmm', 'run', '--sandbox', config], {
      runInSandbox: (c) =>
        runVmInSandbox(c, { console: false, heartbeat: { firstBeatMs: 5000, gapMs: 800 }, sandbox: fakeL1 }),
    });
    return { code, commands, lines: stderr.join('').split('\n').filter(Boolean) };
  };

  it('starts the VM again in a fresh L1 once, saying so in one line, and exits with its status', async function () {
    this.timeout(30_000);
    const r = await vmmRunSandbox([FREEZES, RUNS]);
    expect(r.lines, r.lines.join('\n')).to.have.length(1);
    expect(r.lines[0])
      .to.match(/^vmm: sandbox \(L1\) froze \(no heartbeat for \d+ s \(after 1\)\) after \d+ s; /)
      .and.include('starting the VM again in a fresh L1 (attempt 2 of 2)');
    expect(r.commands).to.have.length(2);
    expect(r.commands[1])
      .to.equal(r.commands[0])
      .and.match(/bin\/vmm\.js' run '.*micro\.yaml'$/);
    expect(r.code).to.equal(ExitCode.ok);
  });

  it('gives up after the second freeze with the report and an error status, without hanging', async function () {
    this.timeout(30_000);
    const r = await vmmRunSandbox([FREEZES, FREEZES]);
    expect(r.commands).to.have.length(2);
    expect(r.code).to.equal(ExitCode.error);
    const text = r.lines.join('\n');
    expect(text).to.match(/attempt 2 of 2/);
    expect(text).to.match(/^vmm: sandbox \(L1\): froze \(no heartbeat for \d+ s \(after 1\)\); QEMU killed after/m);
    expect(text).to.include("L1's kernel stopped: a known crash of kvm_amd");
    expect(text).to.include('L1 froze in each of 2 attempts; not starting it again.');
  });
});
