import { z } from 'zod';
import { HypervisorError } from './errors.js';

/**
 * A vCPU's saved state, the same container for every architecture: which arch and payload version it
 * holds, and the payload, whose schema the arch plugin owns. Restore validates the container here and
 * the payload with the arch's schema, so a snapshot from another arch or version is refused by name.
 */
export interface VcpuState {
  /** The architecture the payload belongs to (the arch plugin's name for it). */
  readonly arch: string;
  /** The payload's layout version (the arch plugin's). */
  readonly version: number;
  /** Arch-specific registers and blobs; validate with the arch's schema before use. */
  readonly payload: unknown;
}

/** The container's schema (the payload stays unknown here). */
export const VcpuStateSchema = z.strictObject({
  arch: z.string().regex(/^[a-z0-9_]{1,32}$/),
  version: z.number().int().min(1).max(0xffff),
  payload: z.unknown(),
});

/** One line naming the first problem of a failed parse: `where: what`. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue?.path.length ? issue.path.map(String).join('.') : '(top)';
  return `${where}: ${issue?.message ?? 'invalid'}`;
}

/**
 * Validates untrusted saved state as a VcpuState for `arch` at `version`; the payload is then parsed with
 * `payloadSchema`. Throws HypervisorError 'InvalidState' with one line naming the first problem.
 */
export function parseVcpuState<P>(untrusted: unknown, arch: string, version: number, payloadSchema: z.ZodType<P>): P {
  const c = VcpuStateSchema.safeParse(untrusted);
  if (!c.success) throw new HypervisorError('InvalidState', `vCPU state: ${describeIssue(c.error)}`, {});
  if (c.data.arch !== arch)
    throw new HypervisorError('InvalidState', `vCPU state is for arch '${c.data.arch}', this vCPU runs '${arch}'`, {
      arch: c.data.arch,
    });
  if (c.data.version !== version)
    throw new HypervisorError(
      'InvalidState',
      `vCPU state version ${c.data.version} is not supported (this build reads version ${version} for '${arch}')`,
      { version: c.data.version },
    );
  const p = payloadSchema.safeParse(c.data.payload);
  if (!p.success) throw new HypervisorError('InvalidState', `vCPU state payload.${describeIssue(p.error)}`, {});
  return p.data;
}
