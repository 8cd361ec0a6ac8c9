import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuestKitError } from './errors.js';

/** Static C programs for the guest (its initramfs has busybox and no libc); sources under hosts/guestkit/tools/. */
export const GUEST_TOOLS = {
  guestio: 'guestio.c',
  vsockio: 'vsockio.c',
  hostile: 'hostile.c',
  'hostile-pci': 'hostile-pci.c',
} as const;
/** The name of one guest tool (a key of GUEST_TOOLS). */
export type GuestTool = keyof typeof GUEST_TOOLS;

/** The C sources (<root>/hosts/guestkit/tools) and <compiled>/hosts/guestkit/bin (the sandbox carries the build). */
function places(): { src: string; bin: string } {
  const here = dirname(fileURLToPath(import.meta.url)); // <root>/<outDir>/hosts/guestkit
  let root = resolve(here, '..', '..');
  while (!existsSync(join(root, 'package.json'))) {
    const up = dirname(root);
    if (up === root) throw new GuestKitError('Unsupported', `no package.json above ${here}`, {});
    root = up;
  }
  return { src: join(root, 'hosts', 'guestkit', 'tools'), bin: join(here, 'bin') };
}

/**
 * The path of a guest tool, compiled with `gcc -O2 -static` when missing or older than its
 * source. Where no compiler exists (inside the sandbox) the built binary is used as it is;
 * without either it throws, naming what to install.
 */
export function guestTool(name: GuestTool): string {
  const { src: srcDir, bin } = places();
  const src = join(srcDir, GUEST_TOOLS[name]);
  const out = join(bin, name);
  const fresh = existsSync(out) && (!existsSync(src) || statSync(out).mtimeMs >= statSync(src).mtimeMs);
  if (fresh) return out;
  mkdirSync(bin, { recursive: true });
  const args = ['-O2', '-static', '-pthread', '-Wall', '-o', out, src];
  const r = spawnSync('gcc', args, { encoding: 'utf8', timeout: 120_000 });
  const fail = (why: string): never => {
    throw new GuestKitError('Unsupported', `cannot compile the guest tool ${name}: ${why}`, {});
  };
  if (r.error && existsSync(out)) return out; // no gcc here (the sandbox): the build's binary
  if (r.error) fail('gcc not found (apt-get install gcc libc6-dev)');
  if (r.status !== 0) fail(r.stderr.trim().split('\n').slice(-3).join(' / '));
  return out;
}

/** Compiles every guest tool (the build runs this, so the sandbox finds them ready). */
export function buildGuestTools(): string[] {
  return (Object.keys(GUEST_TOOLS) as GuestTool[]).map(guestTool);
}
