import { HypervisorError } from './errors.js';

/**
 * A typed name for an architecture's extension of a Vm or Vcpu (its registers, its platform calls).
 * The arch plugin declares the key next to the extension's interface; a backend that supports the arch
 * returns its implementation from `extension(key)`. Keys compare by `name`, so two copies of a plugin
 * module (e.g. an npm plugin with its own copy) still agree.
 */
export interface ArchExtensionKey<T> {
  /** The architecture (e.g. the machine plugin's arch name). */
  readonly arch: string;
  /** Unique name of the extension, `<arch>.<what>`. */
  readonly name: string;
  /** Carries T for type inference only; never set. */
  readonly __type?: T;
}

/** Declares an extension key; `name` should be `<arch>.<what>`. */
export function archExtensionKey<T>(arch: string, name: string): ArchExtensionKey<T> {
  return Object.freeze({ arch, name });
}

/** What a Vm and a Vcpu share: the architecture they run and a typed accessor for its extensions. */
export interface ArchExtensible {
  /** The guest architecture of this VM (e.g. the name the arch plugin's keys carry). */
  readonly arch: string;
  /** The implementation of `key`'s extension, or undefined when this backend/arch has none. */
  extension<T>(key: ArchExtensionKey<T>): T | undefined;
}

/** `target.extension(key)`, or a HypervisorError 'Unsupported' naming the extension, the arch and `what`. */
export function requireExtension<T>(target: ArchExtensible, key: ArchExtensionKey<T>, what: string): T {
  const ext = target.extension(key);
  if (ext === undefined)
    throw new HypervisorError(
      'Unsupported',
      `${what} (arch '${target.arch}') has no '${key.name}' extension: the hypervisor backend does not support ` +
        `the '${key.arch}' machine`,
      { extension: key.name, arch: target.arch },
    );
  return ext;
}
