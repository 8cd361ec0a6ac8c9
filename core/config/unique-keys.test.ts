import { expect } from 'chai';
import { ConfigError } from './errors.js';
import { ConfigSource } from './source.js';

const syntaxError = (text: string): ConfigError => {
  try {
    ConfigSource.fromText(text, 'vm.yaml');
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return e as ConfigError;
  }
  return expect.fail('expected a ConfigError');
};

describe('config: duplicate map keys', () => {
  it('a repeated key is a syntax error at the repeat, in any map; equal-looking keys of other types are not', () => {
    const e = syntaxError('machine:\n  vcpus: 1\n  memory: 1G\n  vcpus: 2\n');
    expect(e.kind).to.equal('Syntax');
    expect(e.message).to.equal('vm.yaml:4:3: YAML syntax error: Map keys must be unique');
    expect(syntaxError('plugins:\n  - {name: a, name: b}\n').where).to.deep.include({ line: 2, column: 15 });
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
