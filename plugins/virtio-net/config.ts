import { z } from 'zod';
import { VirtioTransportNameSchema } from '../../core/config/schema.js';
import { RateLimiterSchema } from '../../core/ratelimit/rate-limiter.js';
import { parseMac } from './config-space.js';
import { CONFIG_MAX_QUEUE_PAIRS, MAX_MTU, MIN_MTU } from './constants.js';

const hostPort = z
  .string()
  .regex(/^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/, 'IPv4 address:port, e.g. 127.0.0.1:5000')
  .transform((s) => {
    const i = s.lastIndexOf(':');
    return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
  })
  .refine((a) => a.port <= 65535 && a.host.split('.').every((x) => Number(x) <= 255), 'address or port out of range');

/** The `backend: { kind: tap }` config: a host tap interface by name (created when asked) or inherited fds. */
export const TapBackendSchema = z
  .strictObject({
    kind: z.literal('tap'),
    /** Interface name (or a template like 'tap%d' with create). */
    name: z
      .string()
      .min(1)
      .max(15)
      .regex(/^[^\s/:]+$/, 'no spaces, "/" or ":"')
      .optional(),
    /** Create the interface if missing (needs CAP_NET_ADMIN); it then lives as long as the VMM. */
    create: z.boolean().default(false),
    /** Inherited tap fds, one per queue pair (from a launcher that opened them). */
    fds: z
      .array(
        z
          .number()
          .int()
          .min(0)
          .max(1 << 20),
      )
      .min(1)
      .max(CONFIG_MAX_QUEUE_PAIRS)
      .optional(),
  })
  .refine((t) => t.name !== undefined || t.fds !== undefined || t.create, 'give a tap name, fds, or create: true')
  .refine((t) => !(t.fds && (t.name || t.create)), 'fds excludes name and create');

/** The `backend: { kind: socket }` config: frames as datagrams over a unix socket pair of paths or UDP. */
export const SocketBackendSchema = z
  .strictObject({
    kind: z.literal('socket'),
    /** Unix datagram socket: bind at `path`, send to the socket at `peer` (paths relative to the YAML file). */
    unix: z.strictObject({ path: z.string().min(1), peer: z.string().min(1) }).optional(),
    /** UDP: bind at `local`, send to `remote` ("127.0.0.1:5000"). */
    udp: z.strictObject({ local: hostPort, remote: hostPort }).optional(),
  })
  .refine((s) => (s.unix === undefined) !== (s.udp === undefined), 'give exactly one of unix or udp');

/**
 * The `backend: { kind: stream }` config: frames with a 4-byte big-endian length over a Unix stream socket
 * (QEMU's `-netdev stream`), e.g. passt's `--socket` for user-mode networking without root or tap.
 */
export const StreamBackendSchema = z.strictObject({
  kind: z.literal('stream'),
  /** The socket to connect to (relative to the YAML file). */
  path: z.string().min(1),
});

/** One network interface per plugin instance (list the plugin several times with `id:` for more). */
export const VirtioNetConfigSchema = z.strictObject({
  /** Default: a random locally administered unicast address. */
  mac: z
    .string()
    .refine((s) => {
      const m = parseMac(s);
      return m !== undefined && (m[0] & 1) === 0;
    }, 'a unicast MAC like 52:54:00:12:34:56')
    .optional(),
  /** Offered to the guest (VIRTIO_NET_F_MTU); set the tap's MTU to match. */
  mtu: z.number().int().min(MIN_MTU).max(MAX_MTU).optional(),
  backend: z.union([TapBackendSchema, SocketBackendSchema, StreamBackendSchema]),
  queuePairs: z.number().int().min(1).max(CONFIG_MAX_QUEUE_PAIRS).default(1),
  queueSize: z
    .number()
    .int()
    .min(16)
    .max(32768)
    .refine((n) => (n & (n - 1)) === 0, 'a power of two')
    .default(256),
  /** Offer checksum / segmentation offloads the backend supports. */
  offloads: z.boolean().default(true),
  linkUp: z.boolean().default(true),
  rateLimiter: z.strictObject({ rx: RateLimiterSchema.optional(), tx: RateLimiterSchema.optional() }).optional(),
  /** The virtio transport to attach to ('mmio', 'pci'); default: the VM's `virtio.transport`, else its only one. */
  transport: VirtioTransportNameSchema.optional(),
});
/** One virtio-net plugin instance's validated config (defaults filled in). */
export type VirtioNetConfig = z.output<typeof VirtioNetConfigSchema>;
/** The validated `backend` part of a VirtioNetConfig. */
export type NetBackendConfig = VirtioNetConfig['backend'];
