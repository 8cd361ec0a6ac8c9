import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.js';
import { parseVmConfig } from './load.js';
import { findExcessNesting, MAX_CONFIG_DEPTH, MAX_CONFIG_NODES } from './nesting.js';

describe('config nesting bound', () => {
  it('counts flow collections and compact block indicators, not brackets inside scalars or comments', () => {
    const deep = '['.repeat(MAX_CONFIG_DEPTH) + ']'.repeat(MAX_CONFIG_DEPTH);
    expect(findExcessNesting(deep)).to.equal(undefined);
    expect(findExcessNesting(`a: ${'['.repeat(MAX_CONFIG_DEPTH + 1)}`)).to.deep.equal({
      offset: 3 + MAX_CONFIG_DEPTH,
      depth: MAX_CONFIG_DEPTH + 1,
    });
    expect(findExcessNesting(`${'- '.repeat(MAX_CONFIG_DEPTH + 1)}x`)?.depth).to.equal(MAX_CONFIG_DEPTH + 1);
    expect(findExcessNesting(`${'- '.repeat(MAX_CONFIG_DEPTH)}x\n${'- '.repeat(MAX_CONFIG_DEPTH)}y`)).to.equal(
      undefined,
    );
    const b = '['.repeat(200);
    const harmless = `a: '${b}'\nb: "${b}"\nc: x${b}\n# ${b}\nd: |\n  ${b}\ne: [1, {f: "]]]"}]\n`;
    expect(findExcessNesting(harmless)).to.equal(undefined);
  });

  it('refuses a deeply nested config with a position, before parsing it', () => {
    let e: unknown;
    try {
      parseVmConfig(`machine:\n  vcpus: ${'{a: '.repeat(1000)}`, 'vm.yaml');
    } catch (err) {
      e = err;
    }
    expect(e).to.be.instanceOf(ConfigError);
    const ce = e as ConfigError;
    expect(ce.kind).to.equal('Syntax');
    expect(ce.where).to.deep.include({ file: 'vm.yaml', line: 2 });
    expect(ce.message).to.match(/^vm\.yaml:2:\d+: YAML nested more than 64 levels deep/);
  });

  /**
   * Parses each text that the JavaScript expression `texts` (an array, `m` is source.js) gives, in a child process
   * with a 64 MB heap; one line per text: the error message, or 'parsed'.
   */
  const inSmallHeap = (texts: string): string[] => {
    const source = fileURLToPath(new URL('./source.js', import.meta.url));
    const script = `import(${JSON.stringify(source)}).then((m) => {
      for (const t of ${texts}) {
        try { m.ConfigSource.fromText(t, 'big.yaml'); console.log('parsed'); } catch (e) { console.log(e.message); }
      }
    });`;
    const r = spawnSync(process.execPath, ['--max-old-space-size=64', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr.slice(-500)).to.equal(0);
    return r.stdout.trim().split('\n');
  };

  it('800 KB of nested brackets is refused within a 64 MB heap (the parser alone took ~0.5 GB)', function () {
    this.timeout(60_000);
    const lines = inSmallHeap(`['['.repeat(800000), '{a: '.repeat(200000), '- '.repeat(400000) + 'x']`);
    expect(lines).to.have.length(3);
    for (const l of lines) expect(l).to.match(/^big\.yaml:1:\d+: YAML nested more than 64 levels deep/);
  });

  it('counts values: more than MAX_CONFIG_NODES is refused before parsing, within a 64 MB heap', function () {
    this.timeout(60_000);
    expect(findExcessNesting('a: [1, "2", *x]\nb:\n  - {c: d}\n')).to.equal(undefined);
    expect(findExcessNesting('[1, 1, 1]', 64, 5)).to.deep.include({ depth: 1, nodes: 6 });
    // 1 MB of one flat list (the parser took 571 MB for it), of quoted values, and of keys
    const keys = `Array.from({ length: 90000 }, (_, i) => 'k' + i + ': v').join('\\n')`;
    const lines = inSmallHeap(`['x: [' + '1,'.repeat(499000) + '1]', 'x: [' + '"",'.repeat(330000) + ']', ${keys}]`);
    expect(lines).to.have.length(3);
    for (const l of lines)
      expect(l).to.match(new RegExp(`^big\\.yaml:\\d+:\\d+: YAML with more than ${MAX_CONFIG_NODES} values`));
  });
});
