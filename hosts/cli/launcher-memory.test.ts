import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';

// Preloaded with --require (which leaves V8's flags alone): the young generation's size before any other code runs,
// and at exit.
const PROBE = `const v8 = require('node:v8');
const size = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
const first = size();
process.on('exit', () => process.stderr.write('NEW-SPACE ' + first + ' ' + size() + '\\n'));
`;

/** [size before, size at exit] of the young generation of `node --require probe ...args`. */
function newSpace(probe: string, args: string[], env: NodeJS.ProcessEnv = process.env): [number, number] {
  const r = spawnSync(process.execPath, ['--require', probe, ...args], { env, encoding: 'utf8', timeout: 30_000 });
  const m = /NEW-SPACE (\d+) (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`no NEW-SPACE line (status ${r.status}): ${r.stderr.slice(-400)}`);
  return [Number(m[1]), Number(m[2])];
}

describe('bin/vmm.js memory (issue 18)', function () {
  this.timeout(60_000);
  let dir: string;
  let probe: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-launcher-'));
    probe = path.join(dir, 'probe.cjs');
    writeFileSync(probe, PROBE);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps V8's young generation at its first size through a start (a plain node grows it)", () => {
    // control: many surviving objects make V8 grow the young generation under its default flags
    const [first, grown] = newSpace(probe, ['-e', 'const a = []; for (let i = 0; i < 400000; i++) a.push({ i });']);
    expect(grown, 'the probe sees growth in a plain node').to.be.greaterThan(2 * first);
    const loc = buildLocations();
    const vmm = path.join(loc.repoRoot, 'bin', 'vmm.js');
    const env = { ...process.env, VMM_DIST: loc.distDir };
    const [before, after] = newSpace(probe, [vmm, 'validate', path.join(loc.repoRoot, 'hosts', 'micro.yaml')], env);
    // space_size counts both semi-spaces once the second is committed: twice the first size, never more
    expect(after, 'vmm validate (config, plugins, schemas loaded)').to.be.at.most(2 * before);
  });
});
