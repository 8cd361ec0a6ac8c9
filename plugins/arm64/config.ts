import { z } from 'zod';

/** The arm64 plugin's `config:` block (nothing to set yet; kept strict so typos are refused). */
export const Arm64ConfigSchema = z.strictObject({});

/** The validated arm64 config. */
export type Arm64Config = z.output<typeof Arm64ConfigSchema>;
