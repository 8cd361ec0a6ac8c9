import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JsonLinesEvents, parseEventMonitor, type VmmEvent } from '../../hosts/api/events.js';
import { ApiHarness } from './harness.js';

describe('api event monitor (JSON lines)', () => {
  it('parses path=FILE and fd=N, refuses anything else', () => {
    expect(parseEventMonitor('path=/tmp/ev')).to.deep.equal({ path: '/tmp/ev' });
    expect(parseEventMonitor('fd=3')).to.deep.equal({ fd: 3 });
    expect(() => parseEventMonitor('file=/x')).to.throw(/path=FILE or fd=N/);
    expect(() => parseEventMonitor('fd=x')).to.throw(/path=FILE or fd=N/);
  });

  it('writes booted, paused, resumed, shutdown of a VM driven through the API, one JSON object per line', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-ev-'));
    const file = path.join(dir, 'events.jsonl');
    const events = new JsonLinesEvents({ path: file });
    const h = await new ApiHarness().start({ events });
    try {
      await h.call('PUT', 'vm.create', { payload: { kernel: '/k' } });
      await h.call('PUT', 'vm.boot');
      await h.call('PUT', 'vm.pause');
      await h.call('PUT', 'vm.resume');
      await h.call('PUT', 'vm.shutdown');
    } finally {
      await h.close();
    }
    await events.close();
    const lines = fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as VmmEvent);
    expect(lines.map((e) => e.event)).to.deep.equal(['booted', 'paused', 'resumed', 'shutdown']);
    expect(lines[3]).to.deep.include({ source: 'vm', properties: { reason: 'api' } });
    expect(lines[0].timestamp).to.have.keys('secs', 'nanos');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
