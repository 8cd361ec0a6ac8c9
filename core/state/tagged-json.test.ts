import { expect } from 'chai';
import { taggedJson } from './tagged-json.js';

describe('core/state taggedJson', () => {
  const codec = taggedJson({ maxDepth: 4, maxNodes: 20, maxBytes: 8 });

  it('tags bigint and bytes anywhere, and reads them back through JSON', () => {
    const v = { a: (1n << 64n) - 1n, b: [Uint8Array.of(1, 2, 3), 0n, 'x', null, true, 1.5], c: { d: Uint8Array.of() } };
    const saved = codec.encode(v);
    expect(saved).to.deep.equal({
      a: { $u64: '18446744073709551615' },
      b: [{ $bytes: 'AQID' }, { $u64: '0' }, 'x', null, true, 1.5],
      c: { d: { $bytes: '' } },
    });
    expect(codec.parse(JSON.parse(JSON.stringify(saved)))).to.deep.equal(v);
  });

  it('refuses what breaks the limits or the tags, with one issue', () => {
    const deep = { a: { b: { c: { d: { e: 1 } } } } };
    const hostile: unknown[] = [
      deep,
      new Array(21).fill(0),
      { $u64: '18446744073709551616' },
      { $u64: '-1' },
      { $u64: 12 },
      { $bytes: 'AQIDBAUGBwgJ' },
      { $bytes: 'A*==' },
      { $bytes: 'AQI' },
      JSON.parse('{"__proto__": {"x": 1}}'),
      Infinity,
      () => 1,
    ];
    for (const h of hostile) {
      const r = codec.safeParse(h);
      expect(r.success, String(JSON.stringify(h))).to.equal(false);
      expect(r.error!.issues).to.have.length(1);
    }
    expect(codec.parse({ $u64: '1', other: 2 }), 'not a tag: an object with two keys').to.deep.equal({
      $u64: '1',
      other: 2,
    });
  });
});
