import { expect } from 'chai';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError } from '../../core/config/errors.js';
import { parseVmConfig } from '../../core/config/load.js';
import { buildLocations } from '../../core/plugin/locations.js';
import { Outcomes, expectOnly, fuzzParams, fuzzTimeout, fuzzTitle, reportOutcomes } from './support.js';

/**
 * The YAML VM config: documents built from the schema's keys with values of any type (and a few
 * unknown keys), printed as YAML and then cut or edited byte by byte, plus the shipped host
 * config mutated the same way. Only ConfigError may escape, with a one-line message; a config that
 * is accepted has the schema's types. (Resource use on huge documents is issue 19 bug 5, not here.)
 */
const anyValue = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 12 }),
  fc.constantFrom('256M', '1G', '0', '1T', '-1', '99999999999999999999G', 'auto', 'pvh', 'exit', 'restart', 'kvm'),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 3 });
const machine = fc.record(
  {
    vcpus: maybe(fc.oneof(fc.integer({ min: 0, max: 2000 }), anyValue)),
    memory: maybe(anyValue),
    memoryBackend: maybe(fc.oneof(fc.constantFrom('anonymous', 'file', 'memfd'), anyValue)),
    memoryPath: maybe(anyValue),
    onReset: maybe(fc.oneof(fc.constantFrom('exit', 'restart'), anyValue)),
  },
  { requiredKeys: [] },
);
const boot = fc.record(
  {
    kernel: fc.oneof(fc.string({ maxLength: 20 }), anyValue),
    initramfs: maybe(anyValue),
    cmdline: maybe(anyValue),
    protocol: maybe(fc.oneof(fc.constantFrom('auto', 'bzimage', 'pvh'), anyValue)),
  },
  { requiredKeys: [] },
);
const plugin = fc.record(
  {
    name: maybe(fc.oneof(fc.constantFrom('kvm', 'x86', 'serial'), anyValue)),
    path: maybe(anyValue),
    id: maybe(anyValue),
    config: maybe(fc.oneof(anyValue, fc.dictionary(fc.string({ maxLength: 6 }), anyValue, { maxKeys: 3 }))),
  },
  { requiredKeys: [] },
);
const doc = fc
  .record(
    {
      machine: maybe(fc.oneof(machine, anyValue)),
      boot: maybe(fc.oneof(boot, anyValue)),
      plugins: maybe(fc.oneof(fc.array(fc.oneof(plugin, anyValue), { maxLength: 4 }), anyValue)),
      extra: maybe(fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), anyValue, { maxKeys: 2 })),
    },
    { requiredKeys: [] },
  )
  .map(({ extra, ...d }) => ({ ...d, ...(extra ?? {}) }));

const micro = readFileSync(join(buildLocations().repoRoot, 'hosts/micro.yaml'), 'utf8');
const text = fc.oneof(
  doc.map((d) => stringify(d)),
  fc
    .tuple(
      doc,
      fc.array(fc.tuple(fc.nat(), fc.constantFrom(...':-[]{}"\'#&*!|>%@`\n\t ,?0aZ\u0000\u00ff')), { maxLength: 6 }),
      fc.option(fc.nat(), { nil: undefined }),
    )
    .map(([d, edits, cut]) => edit(stringify(d), edits, cut)),
  fc
    .tuple(
      fc.array(fc.tuple(fc.nat(), fc.constantFrom(...':-[]{}"\'#&*!|>%@`\n\t ,?0aZ')), { maxLength: 6 }),
      fc.option(fc.nat(), { nil: undefined }),
    )
    .map(([edits, cut]) => edit(micro, edits, cut)),
  fc.string({ maxLength: 200 }),
);

function edit(s: string, edits: [number, string][], cut?: number): string {
  const chars = [...s];
  for (const [at, c] of edits) if (chars.length > 0) chars[at % chars.length] = c;
  const out = chars.join('');
  return cut === undefined ? out : out.slice(0, cut % (out.length + 1));
}

describe('fuzz: YAML VM config', function () {
  this.timeout(fuzzTimeout(1));
  it(
    fuzzTitle('random and mutated configs: only ConfigError with a one-line message; accepted configs are typed'),
    () => {
      const outcomes = new Outcomes();
      fc.assert(
        fc.property(text, (t) => {
          let loaded: ReturnType<typeof parseVmConfig> | undefined;
          const err = expectOnly([ConfigError], () => {
            loaded = parseVmConfig(t, 'fuzz.yaml');
          });
          if (err) {
            outcomes.add((err as ConfigError).kind);
            return;
          }
          outcomes.add('accepted');
          const c = loaded!.config;
          expect(Number.isInteger(c.machine.vcpus) && c.machine.vcpus >= 1).to.equal(true);
          expect(typeof c.machine.memory).to.equal('bigint');
          expect(Array.isArray(c.plugins)).to.equal(true);
        }),
        fuzzParams(),
      );
      reportOutcomes('config', outcomes, ['accepted', 'Invalid', 'Syntax'], 3);
    },
  );

  it('an unknown complex key (found by this target) gives a one-line message', () => {
    // the yaml library prints a long complex key over several lines; the message must not
    const long = 'console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp';
    const text = `boot:\n  kernel: k\n? initramfs: i\n  cmdline: ${long}\n`;
    const err = expectOnly([ConfigError], () => parseVmConfig(text, 'fuzz.yaml'));
    expect(err, 'the config is refused').to.be.instanceOf(ConfigError);
    expect(err!.message).to.include('unknown key');
  });
});
