import 'reflect-metadata';
import { Lifecycle, type DependencyContainer } from 'tsyringe';
import { z } from 'zod';
import type { PluginContext, PluginModule } from '../../core/plugin/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { AcpiTableSet } from './table-set.js';

/** The acpi plugin takes no settings: what goes into the tables comes from contributions. */
export const AcpiConfigSchema = z.strictObject({});
/** The acpi plugin's (empty) config. */
export type AcpiConfig = z.output<typeof AcpiConfigSchema>;

/**
 * Provides `AcpiTables`: the `AcpiTableSet` class, one instance per VM (container-scoped), built by the
 * container when the first contributor injects or resolves it. Plugins that declare the token (`optional`
 * or `requires`) register after this one and contribute; the arch machine builds the tables when it starts.
 */
export function registerAcpi(container: DependencyContainer, ctx: PluginContext<AcpiConfig>): void {
  container.register(Tokens.AcpiTables.token, { useClass: AcpiTableSet }, { lifecycle: Lifecycle.ContainerScoped });
  ctx.logger.debug('ACPI tables service registered');
}

const plugin: PluginModule<AcpiConfig> = { configSchema: AcpiConfigSchema, register: registerAcpi };
export default plugin;
