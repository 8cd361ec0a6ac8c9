import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { configFile, configFromArgs } from './config-input.js';

describe('vmm run: the config file handed to --sandbox', () => {
  let tmp: string;
  beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-cfgfile-'))));
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('a file without --set is used as it is', () => {
    const f = path.join(tmp, 'vm.yaml');
    fs.writeFileSync(f, 'boot: { kernel: k }\n');
    const out = configFile(f, configFromArgs(f, {}), false);
    expect(out.file).to.equal(f);
    out.cleanup();
    expect(fs.existsSync(f)).to.equal(true);
  });

  it('with --set: a copy next to the file (relative paths keep their meaning), removed afterwards', () => {
    const f = path.join(tmp, 'vm.yaml');
    fs.writeFileSync(f, '# mine\nboot: { kernel: k }\n');
    const out = configFile(f, configFromArgs(f, { set: ['machine.memory=1G'] }), true);
    expect(path.dirname(out.file)).to.equal(tmp);
    expect(fs.readFileSync(out.file, 'utf8')).to.contain('# mine').and.contain('memory: 1G');
    out.cleanup();
    expect(fs.existsSync(out.file)).to.equal(false);
    expect(fs.readdirSync(tmp)).to.deep.equal(['vm.yaml']);
  });

  it('the quick form: a temporary file with absolute paths, removed with its folder', () => {
    const out = configFile(undefined, configFromArgs(undefined, { kernel: 'vmlinux', memory: '1G' }), false);
    const cfg = parse(fs.readFileSync(out.file, 'utf8')) as { boot: { kernel: string }; machine: { memory: string } };
    expect(cfg.boot.kernel).to.equal(path.resolve('vmlinux'));
    expect(cfg.machine.memory).to.equal('1G');
    out.cleanup();
    expect(fs.existsSync(path.dirname(out.file))).to.equal(false);
  });
});
