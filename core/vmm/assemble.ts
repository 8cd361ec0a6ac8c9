import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import type { Disposable } from '../bus/bus.js';
import { Tokens } from '../tokens.js';
import type { Logger } from '../logger.js';
import { VmLifecycle } from '../lifecycle.js';
import type { Machine } from '../machine.js';
import { registerPluginInstance } from '../plugin/instance.js';
import { RegisteredHostFiles } from '../host/host-files.js';
import { createPluginScope } from '../plugin/scope.js';
import { manifestsEnforced } from '../plugin/enforce.js';
import { RangeBus } from '../bus/range-bus.js';
import { UvEventLoop } from '../events/uv-event-loop.js';
import { LinuxEventFdFactory } from '../events/linux-eventfd.js';
import { BackendGuestMemoryFactory } from '../memory/factory.js';
import { OrderedDeviceRegistry } from '../device/ordered-registry.js';
import { OrderedStateRegistry } from '../state/registry.js';
import { PlatformResources } from '../platform/platform-resources.js';
import { VmInterrupts } from '../interrupts/vm-interrupts.js';
import { CmdlineBuilder } from '../platform/cmdline-builder.js';
import type { PlatformLayout } from '../platform/layout.js';
import { planVm, type ConfigInput, type PlanOptions, type VmPlan } from './plan.js';
import { AssemblyError } from './errors.js';
import { createLogger } from './logger.js';
import { markStartup, startupTimings } from './timings.js';
import { RuntimeDeviceSet, type RuntimeDevices } from './hotplug.js';

/**
 * How assembleVm builds a VM: the planning options, plus the parent container, a logger, an override hook (swap a
 * backend), a ready plan, and whether to resolve the Machine and enforce manifests.
 */
export interface AssembleOptions extends PlanOptions {
  /** Parent container (default: tsyringe's root). Each VM gets its own child of it. */
  parent?: DependencyContainer;
  logger?: Logger;
  /**
   * Runs after every plugin registered and may re-register tokens, e.g. swap the Hypervisor for
   * MockHypervisor (`container.register(Tokens.Hypervisor.token, { useClass: MockHypervisor })`).
   * It gets the kernel's scope: a child of the VM container whose registrations under framework
   * tokens are published to the VM (classes are built in that scope, no manifest checks).
   * Its disposables are undone first on dispose.
   */
  override?: (container: DependencyContainer, plan: VmPlan) => Disposable[] | void | Promise<Disposable[] | void>;
  /**
   * A plan already made from the same input (planVm), e.g. by `vmm run`'s host check: used
   * instead of planning again. runVm uses it for the first assembly only; a restart plans anew.
   */
  plan?: VmPlan;
  /**
   * Runs once the kernel's singletons are registered and before any plugin registers: may replace one of them
   * in the kernel's scope, e.g. a restore's GuestMemoryFactory that maps the snapshot's memory file.
   */
  kernel?: (kernel: DependencyContainer, plan: VmPlan) => void;
  /** Resolve the Machine token when registered (default true). */
  resolveMachine?: boolean;
  /** Check every plugin's resolves and registrations against its manifest (default: manifestsEnforced()). */
  enforceManifests?: boolean;
}

/**
 * A VM whose plugins all registered: its container, the plan it came from, lifecycle, logger and Machine. The caller
 * owns it and must dispose it.
 */
export interface AssembledVm extends RuntimeDevices {
  readonly container: DependencyContainer;
  readonly plan: VmPlan;
  readonly lifecycle: VmLifecycle;
  readonly logger: Logger;
  readonly machine?: Machine;
  /** Undoes every registration in reverse order; idempotent (every call resolves when the one disposal is done). */
  dispose(): Promise<void>;
}

/**
 * The VM's own AssembledVm, registered in its container for plugins that act on the whole VM (migration's control
 * socket snapshots it): declare `AssembledVm` in the manifest's `uses`. Its `machine` is set once assembly built it.
 */
export const ASSEMBLED_VM = Symbol.for('tsvmm.AssembledVm');

/** The registered PlatformLayout, or a clear error naming what registers one. */
function platformLayout(c: DependencyContainer): PlatformLayout {
  if (!c.isRegistered(Tokens.PlatformLayout.token, true))
    throw new AssemblyError(
      'Register',
      `no plugin registered '${Tokens.PlatformLayout.name}' (interrupt lines, MMIO window): list a machine plugin ` +
        `before the devices that allocate them`,
      {},
    );
  return c.resolve(Tokens.PlatformLayout.token);
}

async function disposeAll(list: Disposable[], logger: Logger): Promise<void> {
  for (const d of [...list].reverse()) {
    try {
      await (d.dispose() as unknown);
    } catch (err) {
      logger.error({ err }, 'dispose failed');
    }
  }
  list.length = 0;
}

/**
 * Builds one VM: a child container with the kernel's singletons, then every listed plugin in
 * dependency order, each in its own scope (core/plugin/scope.ts): register(), then its main class
 * built by constructor injection and attached. Nothing is started. On any failure everything registered
 * so far is disposed in reverse order and the error is rethrown (nothing half-started).
 */
export async function assembleVm(input: ConfigInput, opts: AssembleOptions = {}): Promise<AssembledVm> {
  const plan = opts.plan ?? (await planVm(input, opts));
  const logger = opts.logger ?? createLogger();
  const c = (opts.parent ?? rootContainer).createChildContainer();
  const kernel = createPluginScope(c, { instance: 'kernel', enforce: false }).container;
  const enforce = opts.enforceManifests ?? manifestsEnforced();
  const lifecycle = new VmLifecycle();
  const disposables: Disposable[] = [];
  lifecycle.once('started', () => {
    markStartup('started');
    logger.debug({ timings: startupTimings.marks }, 'startup timings');
    if (process.env.VMM_TIMINGS === '1')
      process.stderr.write(`vmm: startup timings (ms since process start, +delta):\n${startupTimings.format()}\n`);
  });

  const eventLoop = new UvEventLoop(logger.child({ module: 'event-loop' }));
  const bus = new RangeBus(logger.child({ module: 'bus' }));
  disposables.push(eventLoop);
  disposables.push(eventLoop.onError((err, where) => lifecycle.emit('error', err, where)));
  disposables.push(bus.onDeviceError((err, info) => lifecycle.emit('error', err, `${info.space} ${info.name}`)));

  kernel.register(Tokens.VmConfig.token, { useValue: plan.config });
  kernel.register(Tokens.Logger.token, { useValue: logger });
  kernel.register(Tokens.Lifecycle.token, { useValue: lifecycle });
  kernel.register(Tokens.EventLoop.token, { useValue: eventLoop });
  kernel.register(Tokens.EventFdFactory.token, { useValue: new LinuxEventFdFactory() });
  kernel.register(Tokens.GuestMemoryFactory.token, { useValue: new BackendGuestMemoryFactory() });
  const devices = new OrderedDeviceRegistry();
  kernel.register(Tokens.DeviceRegistry.token, { useValue: devices });
  kernel.register(Tokens.StateRegistry.token, { useValue: new OrderedStateRegistry(devices) });
  kernel.register(Tokens.Bus.token, { useValue: bus });
  const resources = new PlatformResources(() => platformLayout(c));
  kernel.register(Tokens.Resources.token, { useValue: resources });
  kernel.register(Tokens.Interrupts.token, {
    useValue: new VmInterrupts({
      resources,
      vm: () => (c.isRegistered(Tokens.Vm.token, true) ? c.resolve(Tokens.Vm.token) : undefined),
      eventFds: c.resolve(Tokens.EventFdFactory.token),
      eventLoop,
      logger: logger.child({ module: 'interrupts' }),
    }),
  });
  kernel.register(Tokens.HostFiles.token, { useValue: new RegisteredHostFiles() });
  kernel.register(Tokens.KernelCmdline.token, { useValue: new CmdlineBuilder(plan.config.boot?.cmdline ?? '') });

  let disposing: Promise<void> | undefined;
  const runtime = new RuntimeDeviceSet({ container: c, plan, lifecycle, logger, enforce });
  const vm: { -readonly [K in keyof AssembledVm]: AssembledVm[K] } = {
    container: c,
    plan,
    lifecycle,
    logger,
    machine: undefined,
    addDevice: (entry) => runtime.addDevice(entry),
    removeDevice: (id, o) => runtime.removeDevice(id, o),
    runtimeDevices: () => runtime.runtimeDevices(),
    // every call waits for the one disposal (a migration's source releases its VM while runVm waits to)
    dispose: () =>
      (disposing ??= (async () => {
        await runtime.disposeAll();
        await disposeAll(disposables, logger);
      })()),
  };
  c.register(ASSEMBLED_VM, { useValue: vm });

  let machine: Machine | undefined;
  try {
    opts.kernel?.(kernel, plan);
    for (const p of plan.plugins) {
      try {
        const info = {
          config: p.config,
          vm: plan.config,
          lifecycle,
          baseDir: plan.baseDir,
          instance: p.instance,
          logger: logger.child({ plugin: p.instance }),
        };
        const manifest = p.plugin.manifest;
        disposables.push(
          ...(await registerPluginInstance(c, p.module, info, {
            manifest,
            manifestPath: p.plugin.manifestPath,
            enforce,
          })),
        );
      } catch (err) {
        throw new AssemblyError(
          'Register',
          `plugin '${p.instance}' failed to register: ${(err as Error)?.message ?? String(err)}`,
          { plugin: p.instance },
          { cause: err },
        );
      }
      markStartup(`plugin registered: ${p.instance}`);
    }
    if (opts.override) {
      const out = await opts.override(kernel, plan);
      if (Array.isArray(out)) disposables.push(...out);
    }
    if (opts.resolveMachine !== false && c.isRegistered(Tokens.Machine.token, true)) {
      try {
        machine = c.resolve(Tokens.Machine.token);
        markStartup('machine built');
      } catch (err) {
        throw new AssemblyError(
          'NoMachine',
          `cannot build the machine: ${(err as Error)?.message ?? String(err)}`,
          {},
          { cause: err },
        );
      }
    }
  } catch (err) {
    await disposeAll(disposables, logger);
    throw err;
  }

  vm.machine = machine;
  return vm;
}
