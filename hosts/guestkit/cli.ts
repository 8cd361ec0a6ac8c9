#!/usr/bin/env node
import { guestKit } from './kit.js';
import { GuestKitError } from './errors.js';
import { buildGuestTools } from './tools.js';

/**
 * `node dist/hosts/guestkit/cli.js setup [--kernel F --initramfs F [--vmlinux F]] [--json]`
 * Builds (or finds in the cache) the guest kit and prints where its files are.
 * `node dist/hosts/guestkit/cli.js tools` compiles the guest's C tools into the build (npm run build
 * runs it; without gcc it says so and leaves them out: the linux tests that need them then fail).
 */
async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'tools') {
    try {
      buildGuestTools();
    } catch (e) {
      process.stderr.write(`guestkit: ${(e as Error).message}\n`);
    }
    return 0;
  }
  if (cmd !== 'setup' && cmd !== 'show') {
    process.stderr.write('usage: guestkit setup [--kernel <bzImage> --initramfs <file> [--vmlinux <file>]] [--json]\n');
    return 2;
  }
  const flag = (name: string) => {
    const i = rest.indexOf(`--${name}`);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  try {
    const kit = await guestKit({ kernel: flag('kernel'), initramfs: flag('initramfs'), vmlinux: flag('vmlinux') });
    if (rest.includes('--json')) process.stdout.write(JSON.stringify(kit, null, 2) + '\n');
    else {
      process.stdout.write(`guest kit (${kit.source}), kernel ${kit.kernelVersion}\n`);
      process.stdout.write(
        `  bzImage   ${kit.bzImage}\n  vmlinux   ${kit.vmlinux}\n  initramfs ${kit.initramfs}\n  modules   ${kit.modulesDir || '(none)'}\n`,
      );
    }
    return 0;
  } catch (e) {
    process.stderr.write(`guestkit: ${e instanceof GuestKitError ? e.message : (e as Error).stack}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
