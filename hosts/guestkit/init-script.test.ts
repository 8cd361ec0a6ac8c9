import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { initScript } from './init-script.js';

describe('guestkit /init', () => {
  const text = initScript();

  it('is valid sh', () => {
    const r = spawnSync('sh', ['-n'], { input: text, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
  });

  it('writes the boot marker at the BOOT_TIMER address and prints the markers', () => {
    expect(text).to.include('devmem 0xd0000000 8 123');
    for (const m of ['TSVMM-INIT-OK', 'TSVMM-RESULT-BEGIN', 'TSVMM-RESULT-END', 'TSVMM-EXIT $rc']) expect(text).to.include(m);
    expect(text).to.include('poweroff -f');
  });

  it('hands <module>.<param>= words from the command line to insmod', () => {
    // run the modparams function alone against a fake command line
    const fn = /modparams\(\) \{[\s\S]*?\n\}\n/.exec(text)![0];
    const r = spawnSync('sh', ['-c', `${fn}\nCMDLINE='console=ttyS0 virtio_mmio.device=4K@0xd0001000:5 virtio-mmio.device=4K@0xd0002000:6 kvm_amd.nested=1'\nmodparams virtio_mmio; modparams kvm-amd`], { encoding: 'utf8' });
    expect(r.stdout.trim().split('\n')).to.deep.equal(['device=4K@0xd0001000:5', 'device=4K@0xd0002000:6', 'nested=1']);
  });
});
