import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildLocations } from '../plugin/locations.js';
import { discoverPlugins } from '../plugin/discovery.js';
import type { TinyMachine } from '../../test/fixtures/tiny-machine/machine.js';
import { runVm } from './run.js';
import { silentLogger } from './logger.js';

const loc = buildLocations();
const tinyYaml = path.join(loc.repoRoot, 'test', 'fixtures', 'tiny-vm.yaml');

describe('swap, real half (kvm tier)', () => {
  it('runs the same tiny-vm.yaml on the real kvm plugin: the guest prints "hi" and halts', async function () {
    const kvm = discoverPlugins().get('kvm');
    if (!fs.existsSync('/dev/kvm') || !kvm || !fs.existsSync(kvm.entryPath)) this.skip();
    let machine: TinyMachine | undefined;
    const r = await runVm(tinyYaml, {
      logger: silentLogger(),
      signals: [],
      onStarted: (vm) => {
        machine = vm.machine as TinyMachine;
      },
    });
    expect(r.exitCode).to.equal(0);
    expect(Buffer.from(machine!.console.writtenBytes()).toString()).to.equal('hi');
  });
});
