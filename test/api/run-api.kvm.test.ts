import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';

describe('vmm run --api-socket (kvm tier)', () => {
  it('serves the API for the run, writes the events, removes the socket when the VM ends', function () {
    if (!fs.existsSync('/dev/kvm')) this.skip();
    const root = buildLocations().repoRoot;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-run-api-'));
    try {
      const socket = path.join(dir, 'api.sock');
      const events = path.join(dir, 'events.jsonl');
      // the tiny guest prints and halts: booted, then shutdown (poweroff), exit 0; the fixture's path plugin runs
      // from the plain tree (the bundle maps only the repository's plugins)
      const r = spawnSync(
        process.execPath,
        [
          path.join(root, 'bin', 'vmm.js'),
          'run',
          '--force',
          '--api-socket',
          socket,
          '--event-monitor',
          `path=${events}`,
          path.join(root, 'test', 'fixtures', 'tiny-vm.yaml'),
        ],
        { encoding: 'utf8', env: { ...process.env, VMM_BUNDLE: '0' }, timeout: 60_000 },
      );
      expect(r.status, r.stderr).to.equal(0);
      const seen = fs
        .readFileSync(events, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { event: string; properties: unknown });
      expect(seen.map((e) => e.event)).to.deep.equal(['booted', 'shutdown']);
      expect(seen[1].properties).to.deep.equal({ reason: 'poweroff' });
      expect(fs.existsSync(socket), 'the socket is removed').to.equal(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
