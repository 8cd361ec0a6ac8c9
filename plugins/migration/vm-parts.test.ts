import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AssembledVm } from '../../core/vmm/assemble.js';
import { MigrationError } from './errors.js';
import { sendMigration } from './send.js';
import { snapshotVm } from './snapshot.js';

/** A VM with a device added at run time (only what the refusal reads before anything else). */
const hotplugged = { runtimeDevices: () => ['net1'] } as unknown as AssembledVm;

describe('migration: a VM with devices added at run time', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mig-parts-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const refused = (err: unknown, what: string): void => {
    expect(err).to.be.instanceOf(MigrationError);
    expect((err as MigrationError).kind).to.equal('State');
    expect((err as Error).message).to.equal(
      `cannot ${what} a VM with devices added at run time (net1): a snapshot or migration carries the devices of ` +
        'its config only; remove them first, or list them in the config',
    );
  };

  it('is not snapshotted (the restored VM, built from the config, would lack them): nothing written', async () => {
    const snap = path.join(dir, 'snap');
    refused(await snapshotVm(hotplugged, snap).catch((e: unknown) => e), 'snapshot');
    expect(fs.existsSync(snap)).to.equal(false);
  });

  it('does not migrate: refused before the destination is contacted', async () => {
    const sock = path.join(dir, 'nobody.sock');
    refused(await sendMigration(hotplugged, `unix:${sock}`).catch((e: unknown) => e), 'migrate');
  });
});
