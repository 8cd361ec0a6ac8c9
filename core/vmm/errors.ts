import { VmmError } from '../errors.js';

/** The one error class of core/vmm (assembly and running). */
export class AssemblyError extends VmmError<'Register' | 'NoMachine' | 'Start'> {}
