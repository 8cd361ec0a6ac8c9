import { VmmError } from '../errors.js';

/**
 * Why loading, ordering or registering plugins failed: a bad manifest, an unknown plugin, a token nobody provides or
 * two provide, a dependency cycle, an entry module that does not load, a config its schema refuses, a register that
 * threw, or a token used without being declared in the manifest ('Undeclared').
 */
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
