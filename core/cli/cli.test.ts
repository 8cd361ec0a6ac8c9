import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildLocations } from '../plugin/locations.js';
import { buildProgram, needsPluginCommands } from './main.js';
import { prettyLogLine } from './log-format.js';
import { formatRows, jsonSchemaOf, schemaRows } from './schema-doc.js';
import { MachineConfigSchema } from '../config/schema.js';

const loc = buildLocations();
const bin = path.join(loc.repoRoot, 'bin', 'vmm.js');

/** Runs `vmm args...` with this build; stdout, stderr, status. */
function vmm(args: string[], cwd = loc.repoRoot): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd,
    env: { ...process.env, VMM_DIST: loc.distDir },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

describe('vmm command line for newcomers', function () {
  this.timeout(120_000);
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-cli-'));
    fs.writeFileSync(path.join(tmp, 'vmlinux'), 'not really a kernel');
    fs.writeFileSync(path.join(tmp, 'root.img'), Buffer.alloc(4096));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('--version prints the package version; --help and each command help show examples', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(loc.repoRoot, 'package.json'), 'utf8')) as { version: string };
    const v = vmm(['--version']);
    expect(v.status).to.equal(0);
    expect(v.stdout).to.match(new RegExp(`^tsvmm ${pkg.version.replace(/\./g, '\\.')} \\(node `));
    const help = vmm(['--help']);
    expect(help.stdout).to.contain('Examples:').and.contain('$ vmm run hosts/micro.yaml');
    for (const cmd of ['run', 'validate', 'plugins', 'schema']) {
      const h = vmm([cmd, '--help']);
      expect(h.status, cmd).to.equal(0);
      expect(h.stdout, cmd).to.contain('Examples:').and.contain(`$ vmm ${cmd}`);
    }
  });

  it('the quick form prints a config that vmm validate and vmm run --print-config take back unchanged', () => {
    const args = ['--kernel', 'vmlinux', '--cpus', '2', '--memory', '512M', '--disk', 'path=root.img,readonly'];
    const printed = vmm(['run', ...args, '--print-config'], tmp);
    expect(printed.status, printed.stderr).to.equal(0);
    expect(printed.stdout).to.contain(`kernel: ${tmp}/vmlinux`).and.contain('name: virtio-blk');
    const file = path.join(tmp, 'quick.yaml');
    fs.writeFileSync(file, printed.stdout);
    const ok = vmm(['validate', file]);
    expect(ok.stderr).to.not.match(/vmm: [^n]/); // only notes about this host, no problems
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stdout).to.contain('ok (10 plugins: acpi -> x86 -> kvm -> serial');
    expect(ok.stdout).to.contain('-> raw-disk -> disk0)');
    expect(vmm(['run', file, '--print-config']).stdout).to.equal(printed.stdout);
    const quick = vmm(['validate', ...args], tmp);
    expect(quick.status, quick.stderr).to.equal(0);
  });

  it('--set overrides keys of a file for validate and run; a bad override is refused naming it', () => {
    const file = path.join(tmp, 'set.yaml');
    fs.writeFileSync(file, `boot: { kernel: vmlinux }\nplugins:\n  - name: serial\n`);
    const p = vmm(['run', file, '--set', 'machine.memory=1G', '--set', 'serial.port=COM2', '--print-config']);
    expect(p.stdout).to.contain('memory: 1G').and.contain('port: COM2');
    const bad = vmm(['validate', file, '--set', 'serial.port=COM9']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/^vmm: --set serial\.port=COM9: plugins\[0\]\.config\.port: /);
    const both = vmm(['run', file, '--kernel', 'x']);
    expect(both.status).to.equal(2);
    expect(both.stderr).to.equal(
      'vmm: give a config file or the quick form (--kernel ...), not both; --set changes a file\n',
    );
  });

  it("vmm plugins NAME shows a plugin's config keys with types and defaults; a misspelt name gets a hint", () => {
    const s = vmm(['plugins', 'serial']);
    expect(s.status, s.stderr).to.equal(0);
    expect(s.stdout).to.match(/^serial \d/);
    expect(s.stdout).to.match(/port\s+"COM1" \| "COM2" \| "COM3" \| "COM4", default "COM1"/);
    expect(s.stdout).to.match(/console\{kind=file\}\.path\s+string, required/);
    expect(s.stdout).to.match(/port\s+.*default "COM1"\n\s+which legacy UART \(I\/O port and line\)\n/);
    const bad = vmm(['plugins', 'serail']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.contain("unknown plugin 'serail' (did you mean 'serial'?)");
  });

  it('vmm schema writes a JSON Schema of the config whose plugin entries carry each plugin config schema', () => {
    const r = vmm(['schema']);
    expect(r.status, r.stderr).to.equal(0);
    const s = JSON.parse(r.stdout) as {
      $schema: string;
      properties: { machine: unknown; plugins: { items: { anyOf: { properties: Record<string, unknown> }[] } } };
    };
    expect(s.$schema).to.contain('json-schema.org');
    const entries = s.properties.plugins.items.anyOf;
    const serial = entries.find((e) => (e.properties.name as { const?: string })?.const === 'serial');
    expect(serial?.properties.config).to.deep.include({ type: 'object', additionalProperties: false });
    expect(entries.some((e) => 'path' in e.properties)).to.equal(true);
  });

  it('rows of a schema: types, defaults, required keys and descriptions', () => {
    const rows = schemaRows(jsonSchemaOf(MachineConfigSchema));
    const vcpus = rows.find((r) => r.key === 'vcpus')!;
    expect(vcpus).to.deep.include({ type: 'integer 1..1024', default: '1', required: false });
    expect(vcpus.description).to.be.a('string');
    expect(formatRows(rows)).to.match(/onReset\s+"exit" \| "restart", default "exit"/);
  });

  it('log lines for people: time, level, module, message, fields; anything else passes through', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 0, 1, 12, 3, 4, 567),
      module: 'kvm',
      msg: 'slow',
      n: 3,
    });
    expect(prettyLogLine(line, false)).to.equal('12:03:04.567 WARN  kvm: slow n=3\n');
    expect(prettyLogLine(line, true)).to.contain('\x1b[33mWARN \x1b[0m');
    expect(prettyLogLine('plain text', false)).to.equal('plain text\n');
  });

  it('vmm run --log-file writes JSON lines there, --log-level chooses what (a problem before start exits 2)', () => {
    const log = path.join(tmp, 'vmm.log');
    const r = vmm(['run', '--kernel', 'missing', '--log-file', log, '--log-level', 'debug'], tmp);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/boot\.kernel: boot file .*missing does not exist/);
    const bad = vmm(['run', '--kernel', 'vmlinux', '--log-level', 'chatty'], tmp);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.contain("argument 'chatty' is invalid");
  });
});

describe("which command lines load the plugins' commands", () => {
  const program = buildProgram();
  const needs = (...args: string[]) => needsPluginCommands(program, ['node', 'vmm', ...args]);
  it('a command of the core (run, validate, plugins) does not; --version alone does not', () => {
    expect(needs('run', 'hosts/micro.yaml')).to.equal(false);
    expect(needs('validate', '--kernel', 'k')).to.equal(false);
    expect(needs('plugins')).to.equal(false);
    expect(needs('--version')).to.equal(false);
    expect(needs('-V')).to.equal(false);
  });
  it("a plugin's command, an unknown one, no command and --help do (they list or run the plugins' commands)", () => {
    expect(needs('image', 'create')).to.equal(true);
    expect(needs('no-such-command')).to.equal(true);
    expect(needs()).to.equal(true);
    expect(needs('--help')).to.equal(true);
  });
});
