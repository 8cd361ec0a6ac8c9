import { expect } from 'chai';
import { ConfigError } from './errors.js';
import { readHostMemory } from './host-memory.js';
import { parseVmConfig } from './load.js';

const GiB = 1n << 30n;

function refusal(text: string, host?: Parameters<typeof parseVmConfig>[2]): ConfigError {
  try {
    parseVmConfig(text, 'vm.yaml', host);
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return e as ConfigError;
  }
  return expect.fail('expected a ConfigError');
}

describe('guest memory against the host', () => {
  const small = { ram: 4n * GiB, swap: 2n * GiB };

  it('refuses more than RAM + swap at validation, pointing at machine.memory', () => {
    const e = refusal('machine:\n  vcpus: 1\n  memory: 1T\n', small);
    expect(e.where).to.deep.include({ file: 'vm.yaml', line: 3, column: 11, key: 'machine.memory' });
    expect(e.message)
      .to.contain("1024.0 GiB is more than this host's RAM + swap (4.0 GiB + 2.0 GiB)")
      .and.contain('machine.overcommit: true');
  });

  it('accepts up to RAM + swap, and anything with overcommit: true', () => {
    expect(parseVmConfig('machine:\n  memory: 6G\n', 'vm.yaml', small).config.machine.memory).to.equal(6n * GiB);
    expect(
      parseVmConfig('machine:\n  memory: 1T\n  overcommit: true\n', 'vm.yaml', small).config.machine.overcommit,
    ).to.equal(true);
  });

  it('a lower cgroup limit wins and is named', () => {
    const e = refusal('machine:\n  memory: 3G\n', { ...small, cgroupLimit: 2n * GiB });
    expect(e.message).to.contain("this process's cgroup memory limit (2.0 GiB)");
  });

  it('reads this host: RAM is known, and 1024T is refused here by default', () => {
    const h = readHostMemory();
    expect(h.ram > 0n).to.equal(true);
    expect(refusal('machine:\n  memory: 1024T\n').where.key).to.equal('machine.memory');
  });
});
