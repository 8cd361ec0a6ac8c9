import * as path from 'node:path';
import { buildLocations } from '../plugin/locations.js';

/**
 * Folders of the test-double plugins that ship with tsvmm, for a VM config's `path:` or for
 * `assembleVm(..., { replacePlugins: { kvm: testPlugins().mockHypervisor } })`. They work from a
 * checkout and from an installed package (node_modules/tsvmm) alike: each folder holds a
 * vmm-plugin.json whose entry is found in the build folder.
 *  - `mockHypervisor`: provides Hypervisor with an x86 MockHypervisor (scripted exits; config
 *    `outPort`, `outText`: bytes each vCPU writes to a port before halting). With it the x86
 *    machine, virtio-mmio and device plugins assemble anywhere (no /dev/kvm).
 *  - `tinyMachine`: provides Machine: one real-mode vCPU printing `text` to `port` and halting
 *    (runs on the mock hypervisor and on real KVM).
 */
export function testPlugins(): { mockHypervisor: string; tinyMachine: string } {
  const fixtures = path.join(buildLocations().repoRoot, 'test', 'fixtures');
  return { mockHypervisor: path.join(fixtures, 'mock-hypervisor'), tinyMachine: path.join(fixtures, 'tiny-machine') };
}
