import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildLocations } from '../plugin/locations.js';
import { Tokens } from '../tokens.js';
import { assembleVm, type AssembledVm } from '../vmm/assemble.js';
import { silentLogger } from '../vmm/logger.js';

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

/**
 * Assembles a micro-like VM for device plugin tests without /dev/kvm and without starting it: the
 * mock hypervisor standing in for `kvm`, the x86 machine (no ACPI), virtio-mmio, then `plugins`
 * (entries as in a VM config). `dir` is the config's folder; a placeholder kernel file is written
 * there (the machine is never started, so it is never read). Dispose the VM when done.
 */
export async function assembleDeviceVm(
  dir: string,
  plugins: PluginEntryConfig[],
  opts: { memory?: string; enforceManifests?: boolean } = {},
): Promise<AssembledVm> {
  fs.writeFileSync(path.join(dir, 'kernel'), 'not started');
  return assembleVm(
    {
      baseDir: dir,
      config: {
        machine: { vcpus: 1, memory: opts.memory ?? '64M' },
        boot: { kernel: 'kernel' },
        plugins: [{ name: 'kvm' }, { name: 'x86', config: { acpi: false } }, { name: 'virtio-mmio' }, ...plugins],
      },
    },
    {
      replacePlugins: { kvm: testPlugins().mockHypervisor },
      resolveMachine: false,
      logger: silentLogger(),
      enforceManifests: opts.enforceManifests ?? true,
    },
  );
}

/** One `plugins:` entry of a VM config: by name or folder, with an instance id and config. */
export type PluginEntryConfig =
  { name: string; id?: string; config?: unknown } | { path: string; id?: string; config?: unknown };

/**
 * Reads the 32-bit registers of the virtio-mmio window of device `id` in an assembled VM, as the
 * guest would (0x008 DeviceID, 0x100 and up its config space); throws when there is no such window.
 */
export function mmioRegisters(vm: AssembledVm, id: string): (offset: number) => number {
  const bus = vm.container.resolve(Tokens.Bus.token);
  const win = bus.registrations('mmio').find((r) => r.name.includes(id));
  if (!win) throw new Error(`no mmio window named after ${id}`);
  return (offset) => {
    const d = new Uint8Array(4);
    bus.read('mmio', win.range.start.value + BigInt(offset), d);
    return new DataView(d.buffer).getUint32(0, true);
  };
}
