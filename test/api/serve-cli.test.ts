import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';
import { apiRequest } from '../../hosts/api/client.js';

const vmm = path.join(buildLocations().repoRoot, 'bin', 'vmm.js');

/** Resolves once something answers vmm.ping on the socket (the server is up), retrying on connect errors. */
async function whenListening(socket: string, child: { exitCode: number | null }): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vmm serve exited with ${child.exitCode}`);
    try {
      if ((await apiRequest(socket, 'GET', 'vmm.ping')).status === 200) return;
    } catch {
      await new Promise((r) => setTimeout(r, 50)); // polling a socket that is not there yet
    }
  }
}

describe('vmm serve and vmm remote (processes)', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-serve-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('serve starts with no VM; remote ping and info answer; shutdown-vmm ends it with 0 and events say so', async () => {
    const socket = path.join(dir, 'api.sock');
    const events = path.join(dir, 'events.jsonl');
    const child = spawn(process.execPath, [vmm, 'serve', '--api-socket', socket, '--event-monitor', `path=${events}`], {
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await whenListening(socket, child);
    const ping = spawnSync(process.execPath, [vmm, 'remote', '--api-socket', socket, 'ping'], { encoding: 'utf8' });
    expect(ping.status).to.equal(0);
    expect(JSON.parse(ping.stdout)).to.include({ pid: child.pid });
    const info = spawnSync(process.execPath, [vmm, 'remote', '--api-socket', socket, 'info'], { encoding: 'utf8' });
    expect(info.status).to.equal(1);
    expect(info.stderr).to.equal('vmm: remote info: 404: Error from API: the VM is not created\n');
    const bye = spawnSync(process.execPath, [vmm, 'remote', '--api-socket', socket, 'shutdown-vmm'], {
      encoding: 'utf8',
    });
    expect(bye.status).to.equal(0);
    expect(await exited).to.equal(0);
    expect(fs.existsSync(socket)).to.equal(false);
    const ev = fs
      .readFileSync(events, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string });
    expect(ev.map((e) => e.event)).to.deep.equal(['starting', 'shutdown']);
  });

  it('SIGTERM ends serve with 143; a second serve on a live socket is refused with one line', async () => {
    const socket = path.join(dir, 'api.sock');
    const child = spawn(process.execPath, [vmm, 'serve', '--api-socket', socket], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await whenListening(socket, child);
    const second = spawnSync(process.execPath, [vmm, 'serve', '--api-socket', socket], { encoding: 'utf8' });
    expect(second.status).to.equal(2);
    expect(second.stderr).to.equal(`vmm: serve: another VMM is listening on ${socket}\n`);
    child.kill('SIGTERM');
    expect(await exited).to.equal(143);
  });
});
