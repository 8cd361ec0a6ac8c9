import { Option, type Command } from 'commander';
import { registerRemoteCommand } from './remote.js';

/**
 * `vmm serve` and `vmm remote` (CliHooks.commands). serve's server code is imported only when serve runs, so the
 * other commands do not pay for it.
 */
export function registerApiCommands(program: Command): void {
  program
    .command('serve')
    .description("start a VMM without a VM, driven through Cloud Hypervisor's REST API on a Unix socket")
    .requiredOption('--api-socket <path>', 'the Unix socket to listen on')
    .option('--event-monitor <spec>', 'write VMM and VM events as JSON lines: path=FILE or fd=N')
    .addOption(
      new Option('--host <host>', 'the host vm.create builds VMs on: cloud (PCI, hotplug) or micro (virtio-mmio)')
        .choices(['cloud', 'micro'])
        .default('cloud'),
    )
    .option('--force', "boot VMs even where this host's KVM cannot boot an unmodified Linux (tiny guests)")
    .addHelpText(
      'after',
      '\nExample:\n  vmm serve --api-socket /tmp/vmm.sock &\n  vmm remote --api-socket /tmp/vmm.sock create vm.json',
    )
    .action(async (opts: { apiSocket: string; eventMonitor?: string; force?: boolean; host?: 'cloud' | 'micro' }) => {
      process.exitCode = await (await import('./cli.js')).serveCommand(opts);
    });
  registerRemoteCommand(program);
}
