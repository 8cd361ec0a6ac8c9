import { expect } from 'chai';
import { ConfigError } from './errors.js';
import { ConfigSource } from './source.js';
import { applyOverrides, parseOverride } from './overrides.js';
import { validateVmConfig } from './load.js';

const GiB = 1n << 30n;
const host = { ram: 64n * GiB, swap: 0n };
const yaml = [
  'machine: { vcpus: 1, memory: 256M }',
  'boot: { kernel: k, cmdline: console=ttyS0 }',
  'plugins:',
  '  - name: serial',
  '    config: { console: { kind: stdio } }',
  '  - name: virtio-blk',
  '    id: disk1',
  '    config: { path: a.img }',
  '  - name: rtc',
  '',
].join('\n');

describe('config overrides (--set key=value)', () => {
  const source = () => ConfigSource.fromText(yaml, 'vm.yaml');

  it('sets VM keys by dotted path and plugin config keys by instance name; values are YAML scalars', () => {
    const s = applyOverrides(source(), [
      'machine.memory=2G',
      'machine.vcpus=4',
      'boot.cmdline=console=ttyS0 quiet',
      'serial.console.kind=file',
      'serial.console.path=out.log',
      'disk1.readOnly=true',
      'rtc.x=0x10',
      'plugins[0].id=com1',
    ]);
    const v = s.value as {
      machine: unknown;
      boot: { cmdline: string };
      plugins: { id?: string; config: Record<string, unknown> }[];
    };
    expect(v.machine).to.deep.equal({ vcpus: 4, memory: '2G' });
    expect(v.boot.cmdline).to.equal('console=ttyS0 quiet');
    expect(v.plugins[0].config).to.deep.equal({ console: { kind: 'file', path: 'out.log' } });
    expect(v.plugins[0].id).to.equal('com1');
    expect(v.plugins[1].config).to.deep.equal({ path: 'a.img', readOnly: true });
    expect(v.plugins[2].config).to.deep.equal({ x: 16 });
    expect(validateVmConfig(s, host).machine.memory).to.equal(2n * GiB);
    expect(s.doc.toString()).to.contain('memory: 2G');
  });

  it('errors about a value an override set name the override; others keep their line', () => {
    const s = applyOverrides(source(), ['machine.vcpus=0']);
    const e = (() => {
      try {
        validateVmConfig(s, host);
      } catch (err) {
        return err as ConfigError;
      }
      return expect.fail('accepted');
    })();
    expect(e.message).to.match(/^--set machine\.vcpus=0: machine\.vcpus: /);
    expect(source().error(['machine', 'vcpus'], 'x').message).to.equal('vm.yaml:1:19: machine.vcpus: x');
  });

  it('refuses an unknown instance (did you mean), a missing "=", a path that is not one', () => {
    expect(() => parseOverride('serail.port=COM2', source())).to.throw(ConfigError, /did you mean 'serial'/);
    expect(() => parseOverride('machine.memory', source())).to.throw(ConfigError, /expected key=value/);
    expect(() => parseOverride('machine..memory=1', source())).to.throw(ConfigError, /not a key path/);
    expect(() => applyOverrides(source(), ['boot.kernel.x=1'])).to.throw(ConfigError, /--set boot\.kernel\.x=1/);
  });
});
