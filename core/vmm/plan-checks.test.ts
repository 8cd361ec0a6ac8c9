import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildLocations } from '../plugin/locations.js';
import { ConfigError } from '../config/errors.js';
import { ConfigErrors, MAX_PROBLEMS, problemsOf } from '../config/problems.js';
import type { HostMemory } from '../config/host-memory.js';
import { planVm } from './plan.js';
import { hostProblems } from '../host/host-check.js';
import { kvmProblems } from '../../plugins/kvm/validate.js';
import type { PlanContext } from '../plugin/plugin.js';
import { VmConfigSchema } from '../config/schema.js';

const loc = buildLocations();
const mockHv = path.join(loc.repoRoot, 'test', 'fixtures', 'mock-hypervisor');
const GiB = 1n << 30n;
const small: HostMemory = { ram: 8n * GiB, swap: 0n };

async function problems(yaml: string, file: string, opts: Parameters<typeof planVm>[1] = {}): Promise<string[]> {
  fs.writeFileSync(file, yaml);
  try {
    await planVm(file, { hostMemory: small, checks: true, ...opts });
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return problemsOf(e as Error).map((p) => p.message);
  }
  return [];
}

describe('planVm checks what vmm run would find late, and reports every problem at once', function () {
  this.timeout(30_000);
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-check-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('missing boot files and disk, memory and vCPUs beyond the host, an unknown transport, ACPI without acpi', async () => {
    const yaml = [
      'machine: { vcpus: 1000, memory: 1T }',
      'boot: { kernel: no-kernel, initramfs: no-initrd }',
      'plugins:',
      `  - path: ${mockHv}`,
      '  - name: x86',
      '  - name: raw-disk',
      '  - name: virtio-mmio',
      '  - name: virtio-blk',
      '    config: { path: no-disk.img, transport: pcie }',
      '',
    ].join('\n');
    const got = await problems(yaml, path.join(tmp, 'vm.yaml'));
    const f = path.join(tmp, 'vm.yaml');
    expect(got).to.have.members([
      `${f}:1:33: machine.memory: 1024.0 GiB is more than this host's RAM + swap (8.0 GiB + 0.0 GiB): the guest ` +
        'would be killed once it uses it; lower it, or set machine.overcommit: true to allow it',
      `${f}:2:17: boot.kernel: boot file ${tmp}/no-kernel does not exist`,
      `${f}:2:39: boot.initramfs: boot file ${tmp}/no-initrd does not exist`,
      `${f}:9:21: plugins[4].config.path: disk image ${tmp}/no-disk.img does not exist`,
      `${f}:9:45: plugins[4].config.transport: virtio-blk: unknown virtio transport 'pcie' (from its 'transport'); ` +
        'this VM has: mmio',
      `${f}:5:5: plugins[1].config.acpi: ACPI is on (x86 config 'acpi', default true) but no acpi plugin is listed: add ` +
        "'- name: acpi' to plugins, or set 'acpi: false' in x86's config for a guest with the MP table only",
      `${f}:1:19: machine.vcpus: 1000 vCPUs: the x86 machine numbers at most 254 (xAPIC ids) (plugin 'x86')`,
    ]);
  });

  it('memory 0 and sizes that are not whole pages are refused by the schema', async () => {
    for (const m of ['0', '4097', '0M']) {
      const got = await problems(`machine: { memory: ${m} }\n`, path.join(tmp, 'm.yaml'));
      expect(got, m).to.deep.equal([
        `${tmp}/m.yaml:1:20: machine.memory: guest memory must be a positive multiple of 4K`,
      ]);
    }
  });

  it('misspelt keys and plugin names get a "did you mean"; plugin config keys too; all at once', async () => {
    const yaml = [
      'machine: { vcpu: 2 }',
      'bot: { kernel: k }',
      'plugins:',
      `  - path: ${mockHv}`,
      '  - name: serail',
      '  - name: rtc',
      '  - name: serial',
      '    config: { prot: COM1 }',
      '',
    ].join('\n');
    const got = await problems(yaml, path.join(tmp, 'k.yaml'));
    expect(got.join('\n')).to.match(/k\.yaml:1:12: machine\.vcpu: unknown key 'vcpu' \(did you mean 'vcpus'\?\)/);
    expect(got.join('\n')).to.match(/k\.yaml:2:1: bot: unknown key 'bot' \(did you mean 'boot'\?\)/);
    expect(got.join('\n')).to.match(
      /k\.yaml:5:11: plugins\[1\]\.name: unknown plugin 'serail' \(did you mean 'serial'\?\)/,
    );
    expect(got.join('\n')).to.match(
      /k\.yaml:8:15: plugins\[3\]\.config\.prot: unknown key 'prot' \(did you mean 'port'\?\)/,
    );
  });

  it('ordering errors (two providers of one token, a missing provider) point at the entries, together', async () => {
    const yaml = [
      `plugins:`,
      `  - path: ${mockHv}`,
      `  - path: ${mockHv}`,
      '    id: hv2',
      '  - name: virtio-mmio',
      '',
    ].join('\n');
    const f = path.join(tmp, 'o.yaml');
    fs.writeFileSync(f, yaml);
    const e = await planVm(f, { hostMemory: small, checks: true }).then(
      () => expect.fail('accepted'),
      (err: Error) => err,
    );
    expect(e).to.be.instanceOf(ConfigErrors);
    const got = problemsOf(e).map((p) => p.message);
    expect(got[0]).to.match(/o\.yaml:3:5: plugins\[1\]: plugins 'mock-hypervisor' and 'hv2' both provide 'Hypervisor'/);
    const missing = /o\.yaml:5:5: plugins\[2\]: plugin 'virtio-mmio' requires '\w+', but no listed plugin/;
    expect(got.filter((m) => missing.test(m))).to.have.length.above(0);
    expect(e.message).to.match(/\(and \d+ more\)$/);
  });

  it('a hostile config with thousands of problems gets the first 50 and a count, quickly found', async () => {
    const entries = Array.from({ length: 5000 }, () => '{ name: rtc }').join(', ');
    const got = await problems(`plugins: [${entries}]\n`, path.join(tmp, 'many.yaml'));
    expect(got).to.have.length(MAX_PROBLEMS + 1);
    expect(got[0]).to.match(/plugins\[1\]: plugin instance 'rtc' is listed twice/);
    expect(got[MAX_PROBLEMS]).to.match(/many\.yaml: 4949 more problems not shown; fix these first$/);
  });

  it('a FIFO named as a disk or kernel is refused before anything opens it', async () => {
    execFileSync('mkfifo', [path.join(tmp, 'fifo')]);
    const yaml = [
      'boot: { kernel: fifo }',
      'plugins:',
      `  - path: ${mockHv}`,
      '  - name: x86',
      '    config: { acpi: false }',
      '  - name: raw-disk',
      '  - name: virtio-mmio',
      '  - name: virtio-blk',
      '    config: { path: fifo }',
      '',
    ].join('\n');
    const got = await problems(yaml, path.join(tmp, 'f.yaml'));
    expect(got).to.have.length(2);
    expect(got[0]).to.contain(`boot.kernel: boot file ${tmp}/fifo is a FIFO (named pipe), not a regular file`);
    expect(got[1]).to.contain(`disk image ${tmp}/fifo is a FIFO (named pipe), not a regular file or a block device`);
  });

  it('without checks: true, planning does not look at files (assembly finds them late)', async () => {
    const f = path.join(tmp, 'c.yaml');
    fs.writeFileSync(f, `boot: { kernel: nothing-here }\nplugins:\n  - path: ${mockHv}\n`);
    await planVm(f, { hostMemory: small });
    expect((await problems(fs.readFileSync(f, 'utf8'), f)).join()).to.contain('does not exist');
  });

  it("a plugin's host check, validate problems and failures are printed one line each, however they are written", async () => {
    const dir = path.join(tmp, 'chatty');
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, 'vmm-plugin.json'),
      JSON.stringify({ name: 'chatty', version: '1.0.0', provides: [], requires: [], entry: './plugin.js' }),
    );
    fs.writeFileSync(
      path.join(dir, 'plugin.js'),
      'export default { register() { return []; }, hostCheck: () => "cannot run here:\\n  no device\\r\\n", ' +
        'validate: () => [{ message: "first\\nsecond" }] };',
    );
    const f = path.join(tmp, 'chatty.yaml');
    fs.writeFileSync(f, `plugins:\n  - path: ${dir}\n`);
    const got = await problems(fs.readFileSync(f, 'utf8'), f);
    expect(got).to.deep.equal([`${f}:2:5: plugins[0]: first second`]);
    const plan = await planVm(f, { hostMemory: small });
    expect(hostProblems(plan)).to.deep.equal(['cannot run here: no device']);
  });

  it("kvm: vCPUs beyond the host's KVM_CAP_MAX_VCPUS are refused, nothing said where /dev/kvm does not open", () => {
    const vm = (vcpus: number) =>
      ({ vm: VmConfigSchema.parse({ machine: { vcpus } }), instance: 'kvm' }) as unknown as PlanContext;
    const cfg = { devicePath: '/dev/kvm' } as Parameters<typeof kvmProblems>[0];
    expect(kvmProblems(cfg, vm(1000), () => 710)).to.deep.equal([
      { vmKey: ['machine', 'vcpus'], message: "1000 vCPUs: this host's KVM allows at most 710" },
    ]);
    expect(kvmProblems(cfg, vm(710), () => 710)).to.deep.equal([]);
    expect(kvmProblems(cfg, vm(1000), () => undefined)).to.deep.equal([]);
  });

  it('vmm validate prints each problem on its own line and exits 2; a good config says ok', () => {
    const f = path.join(tmp, 'v.yaml');
    fs.writeFileSync(f, 'machine: { memory: 0 }\nboot: { kernel: nope }\nplugins:\n  - name: kvmm\n');
    const env = { ...process.env, VMM_DIST: loc.distDir, VMM_BUNDLE: '0' }; // the fixture is a path plugin
    const bin = path.join(loc.repoRoot, 'bin', 'vmm.js');
    const r = spawnSync(process.execPath, [bin, 'validate', f], { env, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).to.equal(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).to.have.length(3);
    expect(lines[0]).to.match(/^vmm: .*v\.yaml:1:20: machine\.memory: /);
    expect(lines[1]).to.match(
      /^vmm: .*v\.yaml:4:11: plugins\[0\]\.name: unknown plugin 'kvmm' \(did you mean 'kvm'\?\)/,
    );
    expect(lines[2]).to.match(/^vmm: .*v\.yaml:2:17: boot\.kernel: boot file .*nope does not exist$/);
    fs.writeFileSync(path.join(tmp, 'kernel'), 'k');
    fs.writeFileSync(f, `boot: { kernel: kernel }\nplugins:\n  - path: ${mockHv}\n`);
    const ok = spawnSync(process.execPath, [bin, 'validate', f], { env, encoding: 'utf8', timeout: 30_000 });
    expect(ok.stdout).to.contain(': ok (1 plugin: mock-hypervisor)');
    expect(ok.status).to.equal(0);
  });
});
