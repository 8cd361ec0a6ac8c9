import { expect } from 'chai';
import { mkdtempSync, openSync, closeSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROOF_PATTERN, PROOF_PATTERN_AT } from '../../plugins/vfio/proof.js';
import type { SandboxVariant } from '../../hosts/sandbox/variant.js';
import { isIommuFile, mergeOutcomes, runIommuFiles } from './iommu-files.js';
import { emptyReport, recount } from './watchdog.js';

describe('linux tier: files for the IOMMU + NVMe sandbox variant', () => {
  let tmp: string;
  beforeEach(() => (tmp = mkdtempSync(join(tmpdir(), 'iommu-files-'))));
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('recognises them by name', () => {
    expect(isIommuFile('/r/dist/plugins/vfio/vfio.iommu.linux.test.js')).to.equal(true);
    expect(isIommuFile('/r/dist/plugins/pci/pci.linux.test.js')).to.equal(false);
  });

  const opts = () => ({ root: '/r', compiled: '/r/dist', tmp, fileTimeoutS: 60, limitMs: 600_000, write: () => {} });
  const file = '/r/dist/plugins/vfio/vfio.iommu.linux.test.js';

  it('runs them in one boot of the variant over a fresh backing file, and passes when the pattern reached it', async () => {
    let variant: SandboxVariant | undefined;
    let backing = '';
    const r = await runIommuFiles([file], opts(), async (_files, o) => {
      variant = o.variant;
      backing = /file=([^,]+),/.exec(o.variant!.qemuArgs.join(' '))![1];
      const fd = openSync(backing, 'r+'); // what the L2 guest does through L1's QEMU
      writeSync(fd, Buffer.from(PROOF_PATTERN), 0, PROOF_PATTERN.length, PROOF_PATTERN_AT);
      closeSync(fd);
      const rep = emptyReport();
      rep.passes.push({ fullTitle: 'vfio proof', file });
      return { report: recount(rep), notes: [] };
    });
    expect(variant?.machine).to.match(/^q35/);
    expect(variant?.qemuArgs).to.include('intel-iommu,intremap=on');
    expect(variant?.append).to.include('intel_iommu=on');
    expect(variant?.modules.map((m) => m.name)).to.include('vfio_pci');
    expect(r.report.stats).to.include({ passes: 1, failures: 0 });
  });

  it('fails naming the file when the guest passed but its pattern is not in the host file', async () => {
    const r = await runIommuFiles([file], opts(), async () => {
      const rep = emptyReport();
      rep.passes.push({ fullTitle: 'vfio proof', file });
      return { report: recount(rep), notes: [] };
    });
    expect(r.report.stats.failures).to.equal(1);
    expect(r.report.failures[0].message).to.match(/pattern is not in .*vfio-nvme.raw/);
    expect(r.report.failures[0].fullTitle).to.include('plugins/vfio/vfio.iommu.linux.test.js');
  });

  it('merges two outcomes of one tier', () => {
    const a = {
      tier: 'linux' as const,
      passed: 1,
      failed: 0,
      skipped: 0,
      failures: [],
      pendingTests: [],
      retried: [],
      seconds: 10,
    };
    const b = { ...a, passed: 2, failed: 1, failures: [{ fullTitle: 'x', message: 'y' }], note: 'n', seconds: 5 };
    expect(mergeOutcomes(a, b)).to.deep.include({ passed: 3, failed: 1, seconds: 15, note: 'n' });
  });
});
