import { expect } from 'chai';
import { createRequire } from 'node:module';
import type { BenchResults, MachineInfo, Row } from '../types.js';
import { boxOf, layoutChart, textWidth, type ChartLayout, type TextBox } from './layout.js';
import { CHART_FONT_FILES, renderPng } from './png.js';
import { renderSvg } from './svg.js';

const machine: MachineInfo = {
  cpuModel: 'AMD EPYC 9B14',
  cpus: 2,
  memoryMiB: 24 * 1024,
  kernel: '6.1',
  hostKvm: 'pvm',
  inSandbox: false,
  node: 'v20.20.2',
  loadAverage: [1, 1, 1],
};

const row = (id: string, median: number, better: Row['better'] = 'lower', spread = 0.1, target?: number): Row => ({
  id,
  bench: id.split('.')[0],
  label: id,
  unit: 'ms',
  better,
  where: id.startsWith('exit') ? 'host' : 'sandbox',
  peer: 'QEMU',
  ratio: { median, min: median * (1 - spread), max: median * (1 + spread), values: [median] },
  target: target === undefined ? undefined : { op: better === 'lower' ? '<=' : '>=', value: target },
});

const results = (rows: Row[]): BenchResults => ({
  version: 1,
  startedAt: '2026-12-06T14:05:00.000Z',
  durationS: 1000,
  repeats: 3,
  selected: [],
  machine,
  sandboxMachine: { ...machine, cpus: 2, inSandbox: true },
  rows,
  problems: [],
});

/** The rows of issue 18's run: 22× worse next to 0.99 and 1.45. */
const issueRows = (): Row[] => [
  row('exit.inline', 0.99, 'lower', 0.05, 1.05),
  row('exit.inline', 3.12, 'lower', 0.2, 1.05),
  row('exit.koffi-raw', 1.32),
  row('exit.worker', 22.1, 'lower', 0.3, 3),
  row('boot.init', 2.14, 'lower', 0.06, 0.8),
  row('start.ready', 13.7, 'lower', 0.4, 1),
  row('block.raw.seqwrite', 0.68, 'higher', 0.1, 1),
  row('block.raw.seqread', 0.5, 'higher', 0.1, 1),
  row('block.raw.randread4k', 0.36, 'higher', 0.1, 1),
  row('block.qcow2.seqwrite', 0.25, 'higher', 0.1, 1),
  row('net-pci.tcp.guest-to-host', 1.45, 'higher'),
  row('vhost.blk.seqwrite', 0.037, 'higher'),
  row('memory.overhead', 1.6, 'lower', 0.05, 0.5),
];

const allTexts = (l: ChartLayout): TextBox[] => [
  ...l.header,
  ...l.rows.flatMap((r) => [r.label, r.value]),
  ...l.ticks.map((t) => t.label),
  ...l.captions,
];

const overlap = (a: TextBox, b: TextBox): boolean => {
  const p = boxOf(a),
    q = boxOf(b);
  return p.x0 < q.x1 && q.x0 < p.x1 && p.y0 < q.y1 && q.y0 < p.y1;
};

describe('bench chart: log axis centred on 1, better always on the right', () => {
  it('a 22x bar does not flatten the others: a 1.3x bar gets 5x the length a linear axis to 22 would give', () => {
    const l = layoutChart(results([row('exit.worker', 22.1), row('a.b', 1.3, 'higher'), row('c.d', 1 / 1.3)]));
    const half = (l.plot.right - l.plot.left) / 2;
    const [worst, up, down] = l.rows;
    expect(worst.x0)
      .to.be.at.least(l.plot.left)
      .and.below(l.centre - 0.85 * half);
    expect(up.x1 - up.x0)
      .to.be.above(0.07 * half)
      .and.above(5 * ((1.3 - 1) / (22.1 - 1)) * half);
    expect(down.x1 - down.x0).to.be.closeTo(up.x1 - up.x0, 1e-6);
    expect(l.range).to.equal(32);
  });

  it('lower-is-better and higher-is-better rows: better is right of the centre, worse left, same length', () => {
    const l = layoutChart(
      results([
        row('t.fast', 0.5, 'lower'),
        row('b.fast', 2, 'higher'),
        row('t.slow', 2, 'lower'),
        row('b.slow', 0.5, 'higher'),
      ]),
    );
    const [a, b, c, d] = l.rows;
    for (const r of [a, b]) expect([r.x0, r.good, r.value.text]).to.deep.equal([l.centre, true, '2.00× better']);
    for (const r of [c, d]) expect([r.x1, r.good, r.value.text]).to.deep.equal([l.centre, false, '2.00× worse']);
    expect(a.x1 - a.x0).to.be.closeTo(c.x1 - c.x0, 1e-6);
    // a target of <= 0.8 on a lower-is-better row is 1.25x better: right of the centre
    expect(layoutChart(results([row('boot.init', 2.14, 'lower', 0.1, 0.8)])).rows[0].target).to.be.above(l.centre);
  });

  it('no two texts overlap, none leaves the canvas, row labels stay left of the plot and values right of it', () => {
    for (const rows of [issueRows(), [row('x.y', 1.01)], [row('exit.worker', 600)]]) {
      const l = layoutChart(results(rows));
      const texts = allTexts(l);
      texts.forEach((a, i) => {
        const b = boxOf(a);
        expect(b.x0, a.text).to.be.at.least(0);
        expect(b.x1, a.text).to.be.at.most(l.width);
        expect(b.y0, a.text).to.be.at.least(0);
        expect(b.y1, a.text).to.be.at.most(l.height);
        for (const c of texts.slice(i + 1)) expect(overlap(a, c), `${a.text} / ${c.text}`).to.equal(false);
      });
      for (const r of l.rows) {
        expect(boxOf(r.label).x1).to.be.at.most(l.plot.left);
        expect(boxOf(r.value).x0).to.be.at.least(l.plot.right);
        expect(r.x0).to.be.at.least(l.plot.left);
        expect(r.x1).to.be.at.most(l.plot.right);
      }
    }
  });

  it('the title names the machine and the date; rows without a ratio are left out', () => {
    const rows = [...issueRows(), { ...row('net.tcp', 1), ratio: undefined, na: 'n/a: no peer' }];
    const l = layoutChart(results(rows));
    const head = l.header.map((t) => t.text).join('\n');
    expect(head).to.contain('AMD EPYC 9B14, 2 CPUs, 24 GiB, host KVM pvm').and.contain('2026-12-06 14:05 UTC');
    expect(l.rows).to.have.length(issueRows().length);
    expect(renderSvg(results(rows)))
      .to.contain('2026-12-06 14:05 UTC')
      .and.contain('font-family="DejaVu Sans');
  });

  it('the width estimate is never below DejaVu Sans as resvg draws it (so the no-overlap check holds on paper)', () => {
    const { Resvg } = createRequire(import.meta.url)('@resvg/resvg-js') as {
      Resvg: new (s: string, o: object) => { getBBox(): { width: number } | undefined };
    };
    const l = layoutChart(results(issueRows()));
    for (const t of [...allTexts(l), { ...l.header[0], text: 'mwMW%—←→×0123456789' }]) {
      const svg =
        `<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="40"><text x="0" y="30" font-size="${t.size}"` +
        ` font-family="DejaVu Sans"${t.bold ? ' font-weight="bold"' : ''}>${t.text}</text></svg>`;
      const font = { loadSystemFonts: false, fontFiles: CHART_FONT_FILES, defaultFontFamily: 'DejaVu Sans' };
      const box = new Resvg(svg, { font }).getBBox();
      expect(box, `resvg drew nothing for ${t.text}: is fonts-dejavu-core installed?`).to.not.equal(undefined);
      expect(textWidth(t.text, t.size, t.bold), t.text).to.be.at.least(box!.width);
    }
  });

  it('renders a PNG of the layout size with resvg', () => {
    const res = results(issueRows());
    const png = renderPng(res);
    expect([...png.subarray(0, 8)]).to.deep.equal([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const l = layoutChart(res);
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).to.deep.equal([l.width, l.height]);
  });
});
