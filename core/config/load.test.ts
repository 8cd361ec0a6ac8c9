import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { loadVmConfig, parseVmConfig } from './load.js';
import { ConfigErrors, MAX_PROBLEMS } from './problems.js';
import { ConfigSource } from './source.js';

function err(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return e as ConfigError;
  }
  return expect.fail('expected a ConfigError');
}

describe('config loading', () => {
  it('parses a valid config with defaults and sizes', () => {
    const { config } = parseVmConfig('machine:\n  vcpus: 2\n  memory: 512M\nplugins:\n  - name: serial\n', 'vm.yaml');
    expect(config.machine.vcpus).to.equal(2);
    expect(config.machine.memory).to.equal(512n << 20n);
    expect(config.machine.onReset).to.equal('exit');
    expect(config.plugins).to.deep.equal([{ name: 'serial' }]);
  });

  it('wrong type: names file, line, column and key', () => {
    const e = err(() => parseVmConfig('machine:\n  vcpus: many\n', 'vm.yaml'));
    expect(e.where).to.deep.include({ file: 'vm.yaml', line: 2, column: 10, key: 'machine.vcpus' });
    expect(e.message).to.match(/^vm\.yaml:2:10: machine\.vcpus: /);
  });

  it('unknown key points at the key itself', () => {
    const e = err(() => parseVmConfig('machine:\n  vcpus: 1\n  vcpu: 2\n', 'vm.yaml'));
    expect(e.where).to.deep.include({ line: 3, column: 3, key: 'machine.vcpu' });
    expect(e.message).to.contain("unknown key 'vcpu'");
  });

  it('errors inside the plugin list point at the entry', () => {
    const e = err(() => parseVmConfig('plugins:\n  - name: a\n  - {}\n', 'vm.yaml'));
    expect(e.where.line).to.equal(3);
    expect(e.where.key).to.equal('plugins[1]');
    expect(e.message).to.contain('exactly one of name or path');
  });

  it('missing required key points at the parent', () => {
    const e = err(() => parseVmConfig('boot:\n  cmdline: x\n', 'vm.yaml'));
    expect(e.where).to.deep.include({ line: 2, key: 'boot.kernel' });
  });

  it('YAML syntax errors and duplicate keys carry a position', () => {
    const e = err(() => parseVmConfig('machine:\n  vcpus: [1\n', 'vm.yaml'));
    expect(e.kind).to.equal('Syntax');
    expect(e.where.line).to.be.a('number');
    const d = err(() => parseVmConfig('machine: {}\nmachine: {}\n', 'vm.yaml'));
    expect(d.kind).to.equal('Syntax');
    expect(d.where.line).to.equal(2);
  });

  it('unknown keys past the problem limit are only counted: no position search each (30,000 of them took 36 s)', () => {
    const n = 2000;
    const position = ConfigSource.prototype.position;
    let searches = 0;
    ConfigSource.prototype.position = function (...a: Parameters<typeof position>) {
      searches++;
      return position.apply(this, a);
    };
    try {
      const text = Array.from({ length: n }, (_, i) => `k${i}: v`).join('\n');
      const e = err(() => parseVmConfig(text, 'vm.yaml'));
      expect(e).to.be.instanceOf(ConfigErrors);
      expect(e.message).to.equal(`vm.yaml:1:1: k0: unknown key 'k0' (and ${n - 1} more)`);
      expect((e as ConfigErrors).problems.at(-1)!.message).to.match(/\d+ more problems not shown/);
    } finally {
      ConfigSource.prototype.position = position;
    }
    expect(searches).to.be.at.most(MAX_PROBLEMS);
  });

  it('refuses alias bombs', () => {
    let y = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i < 12; i++)
      y += `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]\n`;
    const e = err(() => parseVmConfig(y, 'bomb.yaml'));
    expect(e.kind).to.equal('Syntax');
  });

  it('validates a nested block with another schema, positions relative to the document', () => {
    const { source } = parseVmConfig('plugins:\n  - name: disk\n    config:\n      path: 3\n', 'vm.yaml');
    const schema = z.strictObject({ path: z.string() });
    const e = err(() =>
      source.validate(schema, (source.value as { plugins: { config: unknown }[] }).plugins[0].config, [
        'plugins',
        0,
        'config',
      ]),
    );
    expect(e.where).to.deep.include({ line: 4, column: 13, key: 'plugins[0].config.path' });
  });

  it('reads files; missing file is a Read error naming it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    try {
      const f = path.join(dir, 'vm.yaml');
      fs.writeFileSync(f, 'machine:\n  memory: 1G\n');
      expect(loadVmConfig(f).config.machine.memory).to.equal(1n << 30n);
      const e = err(() => loadVmConfig(path.join(dir, 'nope.yaml')));
      expect(e.kind).to.equal('Read');
      expect(e.message).to.contain('nope.yaml').and.contain('ENOENT');
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});

describe('config: duplicate map keys', () => {
  it('a repeated key is a syntax error at the repeat, in any map; equal-looking keys of other types are not', () => {
    const e = err(() => ConfigSource.fromText('machine:\n  vcpus: 1\n  memory: 1G\n  vcpus: 2\n', 'vm.yaml'));
    expect(e.kind).to.equal('Syntax');
    expect(e.message).to.equal('vm.yaml:4:3: YAML syntax error: Map keys must be unique');
    expect(err(() => ConfigSource.fromText('plugins:\n  - {name: a, name: b}\n', 'vm.yaml')).where).to.deep.include({
      line: 2,
      column: 15,
    });
    expect(ConfigSource.fromText('a:\n  1: x\n  "1": y\nb: {1: x}\n', 'vm.yaml').value).to.deep.equal({
      a: { 1: 'y' },
      b: { 1: 'x' },
    });
  });

  it('50,000 distinct keys (half the size limit) are checked in linear time, not pair by pair', function () {
    // a hang guard, not a measurement: a few seconds here; the yaml package's own check compares every pair
    // (40,000 keys: 112 s on this machine, 1 MB of keys: > 10 min)
    this.timeout(60_000);
    const n = 50_000;
    const s = ConfigSource.fromText(Array.from({ length: n }, (_, i) => `k${i}: v\n`).join(''), 'big.yaml');
    expect(Object.keys(s.value as object)).to.have.length(n);
  });
});
