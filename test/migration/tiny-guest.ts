import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestAddress } from '../../core/address.js';
import type { GuestMemory } from '../../core/memory/guest-memory.js';
import { Tokens } from '../../core/tokens.js';
import { assembleVm, type AssembledVm } from '../../core/vmm/assemble.js';
import { silentLogger } from '../../core/vmm/logger.js';
import { fakeElfKernel } from '../../plugins/x86/testing.js';

/** Where the tiny guest keeps its counter (guest-physical). */
export const COUNTER = GuestAddress.of(0x5000);
/** A page the tests put data in. */
export const DATA = GuestAddress.of(0x20_0000);

/**
 * A PVH "kernel" whose entry (32-bit, paging off) increments the dword at COUNTER forever and, every 65536 counts,
 * writes the counter's third byte (count >> 16) to COM1: a restored guest prints the byte after the one its
 * snapshot holds. It runs on any KVM (on PVM its CPL0 code is emulated, slowly but surely).
 */
export function counterKernel(): Uint8Array {
  // prettier-ignore
  const code = Uint8Array.of(
    0xff, 0x05, 0x00, 0x50, 0x00, 0x00, //                          0: inc dword [0x5000]
    0xf7, 0x05, 0x00, 0x50, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, //  6: test dword [0x5000], 0xffff
    0x75, 0xee, //                                                 16: jnz 0
    0x66, 0xba, 0xf8, 0x03, //                                     18: mov dx, 0x3f8
    0xa0, 0x02, 0x50, 0x00, 0x00, //                               22: mov al, [0x5002]
    0xee, //                                                       27: out dx, al
    0xeb, 0xe2, //                                                 28: jmp 0
  );
  return fakeElfKernel({ segments: [{ paddr: 0x100_0000n, data: code }], pvhEntry: 0x100_0000n });
}

/**
 * A micro-like VM config around the counter kernel (file names relative to the folder it is written to); `console`
 * is the serial console (default none), `extra` more plugin entries.
 */
export function tinyConfig(extra: object[] = [], console: object = { kind: 'none' }): object {
  return {
    machine: { vcpus: 1, memory: '64M' },
    boot: { kernel: 'counter.elf', protocol: 'pvh' },
    plugins: [
      { name: 'kvm' },
      { name: 'acpi' },
      { name: 'x86', config: { haltPollMs: 0 } },
      { name: 'serial', config: { port: 'COM1', console } },
      { name: 'i8042' },
      { name: 'rtc' },
      { name: 'boot-timer' },
      ...extra,
    ],
  };
}

/** Writes the counter kernel into `dir`. */
export function writeTinyGuest(dir: string): void {
  fs.writeFileSync(path.join(dir, 'counter.elf'), counterKernel());
}

/** The VM's guest memory. */
export const memoryOf = (vm: AssembledVm): GuestMemory => vm.container.resolve(Tokens.GuestMemory.token);

/** Resolves once `check` holds, asking every `every` milliseconds (gives up after `ms`). */
export async function until(check: () => boolean, what: string, ms = 20_000, every = 5): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** A kvm-tier test file's tiny-guest VMs: a scratch folder with the kernel, and every VM stopped after each test. */
export interface TinyScope {
  readonly dir: string;
  /** Keeps `vm` to be stopped and disposed after the test; returns it. */
  track(vm: AssembledVm): AssembledVm;
  /** Assembles and starts the counter guest (tracked), with `extra` plugin entries (tinyConfig's). */
  start(extra?: object[]): Promise<AssembledVm>;
}

/** Mocha hooks for a kvm-tier file of tiny guests (skips without /dev/kvm); read `dir` inside the tests. */
export function tinyScope(prefix: string): TinyScope {
  const vms: AssembledVm[] = [];
  const scope = {
    dir: '',
    track: (vm: AssembledVm) => (vms.push(vm), vm),
    start: async (extra: object[] = []) => {
      const vm = scope.track(
        await assembleVm({ config: tinyConfig(extra), baseDir: scope.dir }, { logger: silentLogger() }),
      );
      await vm.machine!.start();
      return vm;
    },
  };
  before(function () {
    if (!fs.existsSync('/dev/kvm')) this.skip(); // reason: no /dev/kvm on this host
    scope.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
    writeTinyGuest(scope.dir);
  });
  afterEach(async () => {
    for (const vm of vms.splice(0)) {
      await vm.machine?.stop({ kind: 'api' });
      await vm.dispose();
    }
  });
  after(() => scope.dir && fs.rmSync(scope.dir, { recursive: true, force: true }));
  return scope;
}
