import { VmmError } from '../errors.js';

export type PluginErrorKind =
  | 'Manifest'
  | 'Unknown'
  | 'MissingProvider'
  | 'DuplicateProvider'
  | 'Cycle'
  | 'Entry'
  | 'Config'
  | 'Register'
  | 'Undeclared';

/** The one error class of core/plugin: which plugin, which token, what to do. */
export class PluginError extends VmmError<PluginErrorKind> {}
