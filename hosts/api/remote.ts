import * as fs from 'node:fs';
import { Command } from 'commander';
import { apiRequest, describeAnswer } from './client.js';

/** `k=v,k2=v2` (ch-remote's device syntax) as an object: on/off/true/false become booleans, digits numbers. */
export function parseKeyValues(spec: string): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const part of spec.split(',')) {
    if (!part) continue;
    const i = part.indexOf('=');
    if (i <= 0) throw new Error(`expected key=value, got '${part}'`);
    const k = part.slice(0, i);
    const v = part.slice(i + 1);
    out[k] = v === 'on' || v === 'true' ? true : v === 'off' || v === 'false' ? false : /^\d+$/.test(v) ? Number(v) : v;
  }
  return out;
}

/** One `vmm remote` subcommand: its API endpoint, method, and how its arguments become the body. */
interface RemoteCommand {
  endpoint: string;
  method: 'GET' | 'PUT';
  description: string;
  arg?: string;
  body?: (arg: string) => unknown;
}

const COMMANDS: Record<string, RemoteCommand> = {
  ping: { endpoint: 'vmm.ping', method: 'GET', description: 'is the VMM there (its version and pid)' },
  info: { endpoint: 'vm.info', method: 'GET', description: "the VM's config and state" },
  counters: { endpoint: 'vm.counters', method: 'GET', description: 'per-device counters' },
  create: {
    endpoint: 'vm.create',
    method: 'PUT',
    description: "create a VM from a Cloud Hypervisor VmConfig (a JSON file, '-' for stdin)",
    arg: '<config.json>',
    body: (f) => JSON.parse(fs.readFileSync(f === '-' ? 0 : f, 'utf8')),
  },
  boot: { endpoint: 'vm.boot', method: 'PUT', description: 'boot the created VM' },
  pause: { endpoint: 'vm.pause', method: 'PUT', description: 'pause the VM' },
  resume: { endpoint: 'vm.resume', method: 'PUT', description: 'resume the paused VM' },
  shutdown: { endpoint: 'vm.shutdown', method: 'PUT', description: 'stop the VM (its config stays)' },
  reboot: { endpoint: 'vm.reboot', method: 'PUT', description: 'reboot the VM' },
  'power-button': { endpoint: 'vm.power-button', method: 'PUT', description: 'press the ACPI power button' },
  delete: { endpoint: 'vm.delete', method: 'PUT', description: 'stop and forget the VM' },
  'shutdown-vmm': { endpoint: 'vmm.shutdown', method: 'PUT', description: 'stop the VM and end the VMM' },
  'add-disk': {
    endpoint: 'vm.add-disk',
    method: 'PUT',
    description: 'add a disk: path=FILE[,readonly=on][,id=ID]',
    arg: '<disk>',
    body: parseKeyValues,
  },
  'add-net': {
    endpoint: 'vm.add-net',
    method: 'PUT',
    description: 'add a network device: tap=NAME[,mac=MAC][,id=ID]',
    arg: '<net>',
    body: parseKeyValues,
  },
  'add-fs': {
    endpoint: 'vm.add-fs',
    method: 'PUT',
    description: 'add a virtio-fs share: tag=TAG,socket=PATH[,num_queues=N][,queue_size=N][,id=ID]',
    arg: '<fs>',
    body: parseKeyValues,
  },
  'add-vsock': {
    endpoint: 'vm.add-vsock',
    method: 'PUT',
    description: 'add a vsock device: cid=CID,socket=PATH[,id=ID]',
    arg: '<vsock>',
    body: parseKeyValues,
  },
  'add-device': {
    endpoint: 'vm.add-device',
    method: 'PUT',
    description: 'pass a host PCI device through (VFIO): path=/sys/bus/pci/devices/BDF[,id=ID]',
    arg: '<device>',
    body: parseKeyValues,
  },
  resize: {
    endpoint: 'vm.resize',
    method: 'PUT',
    description: "set the balloon's size: balloon=BYTES (the guest gives that much memory back)",
    arg: '<resize>',
    body: (spec) => {
      const kv = parseKeyValues(spec);
      const known = { balloon: 'desired_balloon', cpus: 'desired_vcpus', ram: 'desired_ram' } as const;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(kv)) {
        if (!(k in known)) throw new Error(`resize takes balloon=, cpus= or ram=, not '${k}'`);
        out[known[k as keyof typeof known]] = v;
      }
      return out;
    },
  },
  'remove-device': {
    endpoint: 'vm.remove-device',
    method: 'PUT',
    description: 'remove a device by id',
    arg: '<id>',
    body: (id) => ({ id }),
  },
  snapshot: {
    endpoint: 'vm.snapshot',
    method: 'PUT',
    description: 'snapshot the paused VM into a folder (file:///dir)',
    arg: '<url>',
    body: (destination_url) => ({ destination_url }),
  },
  restore: {
    endpoint: 'vm.restore',
    method: 'PUT',
    description: 'restore a VM from a snapshot: source_url=file:///dir',
    arg: '<config>',
    body: parseKeyValues,
  },
  'send-migration': {
    endpoint: 'vm.send-migration',
    method: 'PUT',
    description: 'migrate the VM to tcp:HOST:PORT or unix:PATH',
    arg: '<url>',
    body: (destination_url) => ({ destination_url }),
  },
  'receive-migration': {
    endpoint: 'vm.receive-migration',
    method: 'PUT',
    description: 'receive a migration on tcp:HOST:PORT or unix:PATH',
    arg: '<url>',
    body: (receiver_url) => ({ receiver_url }),
  },
};

/** Runs one remote command; resolves with the exit code (0 ok, 1 the VMM refused, 2 bad arguments). */
export async function runRemote(
  socketPath: string,
  name: string,
  arg: string | undefined,
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  const c = COMMANDS[name];
  let body: unknown;
  try {
    body = c.body && arg !== undefined ? c.body(arg) : undefined;
  } catch (e) {
    err(`vmm: remote ${name}: ${(e as Error).message}\n`);
    return 2;
  }
  let a;
  try {
    a = await apiRequest(socketPath, c.method, c.endpoint, body);
  } catch (e) {
    err(`vmm: remote: cannot reach the VMM at ${socketPath}: ${(e as Error).message}\n`);
    return 1;
  }
  if (a.status >= 400) {
    err(`vmm: remote ${name}: ${describeAnswer(a)}\n`);
    return 1;
  }
  if (a.body !== undefined) out(`${typeof a.body === 'string' ? a.body : JSON.stringify(a.body, null, 2)}\n`);
  return 0;
}

/** Adds `vmm remote --api-socket PATH <command>` (ch-remote's commands) to the program. */
export function registerRemoteCommand(program: Command): void {
  const remote = program
    .command('remote')
    .description('drive a running VMM through its API socket (as ch-remote does)')
    .requiredOption('--api-socket <path>', 'the API socket of `vmm serve` or `vmm run --api-socket`');
  for (const [name, c] of Object.entries(COMMANDS)) {
    const sub = remote.command(name).description(c.description);
    if (c.arg) sub.argument(c.arg);
    sub.action(async (arg?: string) => {
      const socket = (remote.opts() as { apiSocket: string }).apiSocket;
      process.exitCode = await runRemote(socket, name, typeof arg === 'string' ? arg : undefined);
    });
  }
}
