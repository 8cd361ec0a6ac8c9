import { expect } from 'chai';
import { sandboxGroups } from './sandbox-groups.js';
import type { GuestBench } from './types.js';

describe('bench sandbox groups', () => {
  const variant = () => ({
    name: 'v',
    machine: 'q35',
    qemuArgs: [],
    append: '',
    modules: [],
    stage: '',
    diskDevice: 'virtio-blk-pci',
  });
  const benches: GuestBench[] = [
    { names: ['boot', 'memory'], run: async () => [] },
    { names: ['vfio'], run: async () => [], sandbox: variant },
  ];

  it('runs the usual benchmarks in one L1 and a benchmark with its own L1 variant in a boot of its own', () => {
    const g = sandboxGroups(['exit', 'boot', 'vfio'], benches);
    expect(g.map((x) => x.names)).to.deep.equal([['exit', 'boot'], ['vfio']]);
    expect(g[0].sandbox).to.equal(undefined);
    expect(g[1].sandbox).to.equal(variant);
  });

  it('boots no usual L1 when only a variant benchmark is selected, and no variant one when it is not', () => {
    expect(sandboxGroups(['vfio'], benches).map((x) => x.names)).to.deep.equal([['vfio']]);
    expect(sandboxGroups(['memory'], benches)).to.deep.equal([{ names: ['memory'] }]);
    expect(sandboxGroups([], benches)).to.deep.equal([]);
  });
});
