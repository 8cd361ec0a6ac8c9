import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vfioBoundFunctions } from './proof.js';

describe('vfio proof helpers: vfioBoundFunctions', () => {
  let sys: string;
  beforeEach(() => (sys = mkdtempSync(join(tmpdir(), 'vfio-sys-'))));
  afterEach(() => rmSync(sys, { recursive: true, force: true }));
  const fn = (address: string, vendor: string, device: string, cls: string) => {
    const d = join(sys, 'devices', address);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'vendor'), `${vendor}\n`);
    writeFileSync(join(d, 'device'), `${device}\n`);
    writeFileSync(join(d, 'class'), `${cls}\n`);
    return d;
  };

  it('lists the functions vfio-pci holds with their ids and class, and nothing without the driver', () => {
    expect(vfioBoundFunctions(sys)).to.deep.equal([]);
    const nvme = fn('0000:00:04.0', '0x1b36', '0x0010', '0x010802');
    fn('0000:00:02.0', '0x8086', '0x10d3', '0x020000');
    const drv = join(sys, 'drivers', 'vfio-pci');
    mkdirSync(drv, { recursive: true });
    symlinkSync(nvme, join(drv, '0000:00:04.0'));
    writeFileSync(join(drv, 'new_id'), '');
    writeFileSync(join(drv, 'bind'), '');
    expect(vfioBoundFunctions(sys)).to.deep.equal([
      { address: '0000:00:04.0', ids: '1b36:0010', pciClass: '0x010802' },
    ]);
  });
});
