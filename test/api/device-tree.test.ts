import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLocations } from '../../core/plugin/locations.js';
import { Tokens } from '../../core/tokens.js';
import { assembleVm, type AssembledVm } from '../../core/vmm/assemble.js';
import { silentLogger } from '../../core/vmm/logger.js';
import { fakeBzImage } from '../../plugins/x86/testing.js';
import { deviceTree, pciAttachmentOf } from '../../hosts/api/device-tree.js';
import { mapVmConfig } from '../../hosts/api/mapping.js';
import { VmConfig } from '../../hosts/api/schemas.js';
import { checkResponse } from './openapi.js';
import { theSpec } from './harness.js';

const MOCK_HV = join(buildLocations().repoRoot, 'test/fixtures/mock-hypervisor');

describe("vm.info's device_tree (Cloud Hypervisor's DeviceNode) of a cloud-host VM (mock hypervisor)", function () {
  this.timeout(60_000);
  let dir: string;
  let vm: AssembledVm;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'api-device-tree-'));
    writeFileSync(join(dir, 'bzImage'), fakeBzImage());
    writeFileSync(join(dir, 'd.img'), Buffer.alloc(1 << 20));
    const ch = VmConfig.parse({
      payload: { kernel: 'bzImage' },
      memory: { size: 64 << 20 },
      disks: [{ path: 'd.img' }],
    });
    vm = await assembleVm(
      { baseDir: dir, config: mapVmConfig(ch, dir, 'cloud').config },
      { replacePlugins: { kvm: MOCK_HV }, resolveMachine: false, logger: silentLogger() },
    );
  });
  after(async () => {
    await vm?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists each device with its ports, lines, PCI address and BARs where the guest placed them', () => {
    const fn = pciAttachmentOf(vm.container.resolve(Tokens.PciBus.token).attachments(), 'disk0')!;
    expect(fn.device.id).to.equal('virtio-pci:disk0');
    // the guest places the 64-bit BAR: low and high halves of its registers
    const bar = fn.device.bars.find((b) => b.kind === 'mmio64')!;
    fn.device.writeConfig(0x10 + 4 * bar.index, 4, 0xe000_0000);
    fn.device.writeConfig(0x14 + 4 * bar.index, 4, 0x1);
    const tree = deviceTree(vm);
    expect(tree.serial).to.deep.equal({
      id: 'serial',
      resources: [{ PioAddressRange: { base: 0x3f8, size: 8 } }, { LegacyIrq: 4 }],
      children: [],
    });
    expect(tree.i8042.resources).to.deep.include({ PioAddressRange: { base: 0x60, size: 1 } });
    const disk = tree['virtio-pci:disk0'];
    expect(disk.pci_bdf).to.equal('0000:00:01.0');
    expect(disk.resources).to.deep.include({
      PciBar: {
        index: bar.index,
        base: 0x1_e000_0000,
        size: Number(bar.size),
        type_: 'Memory64BitRegion',
        prefetchable: bar.prefetchable ?? false,
      },
    });
    // the shape the spec gives vm.info
    const info = { config: { payload: { kernel: '/k' } }, state: 'Running', device_tree: tree };
    expect(checkResponse(theSpec(), 'vm.info', 'GET', 200, info)).to.deep.equal([]);
  });
});
