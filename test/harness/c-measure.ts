/**
 * ABI tests' judge: compiles a small C program with the host's gcc over kernel headers and reads back the
 * numbers it prints (struct sizes, member offsets, ioctl numbers, flags), so a layout declared in TypeScript
 * is compared with what the C compiler makes of the header.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leafPaths, type StructDef } from '../../plugins/kvm/abi/layout.js';

/** True when gcc runs here. */
export function hasGcc(): boolean {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** printf lines for `size <struct>`, `off <struct>.<member>` and `fsize <struct>.<member>` of every leaf member. */
export function structProbes(structs: Readonly<Record<string, StructDef>>): string[] {
  const lines: string[] = [];
  for (const [name, def] of Object.entries(structs)) {
    lines.push(`printf("size ${name} %zu\\n", sizeof(struct ${name}));`);
    for (const p of leafPaths(def)) {
      lines.push(`printf("off ${name}.${p} %zu\\n", offsetof(struct ${name}, ${p}));`);
      lines.push(`printf("fsize ${name}.${p} %zu\\n", sizeof(((struct ${name} *)0)->${p}));`);
    }
  }
  return lines;
}

/**
 * Compiles `body` (statements printing `<kind> <key> <number>` lines) inside main() after the `includes`
 * (stdio.h and stddef.h come first), runs it and returns `"<kind> <key>"` → number.
 */
export function measureC(includes: readonly string[], body: readonly string[], gccArgs: readonly string[] = []) {
  const src = ['#include <stdio.h>', '#include <stddef.h>', ...includes.map((i) => `#include <${i}>`)];
  src.push('int main(void) {', ...body, 'return 0; }');
  const dir = mkdtempSync(join(tmpdir(), 'c-measure-'));
  try {
    writeFileSync(join(dir, 'm.c'), src.join('\n'));
    execFileSync('gcc', [...gccArgs, '-o', join(dir, 'm'), join(dir, 'm.c')], {
      timeout: 60_000,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const m = new Map<string, number>();
    for (const l of execFileSync(join(dir, 'm'), { timeout: 10_000 }).toString().trim().split('\n')) {
      const [kind, key, v] = l.split(' ');
      m.set(`${kind} ${key}`, Number(v));
    }
    return m;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
