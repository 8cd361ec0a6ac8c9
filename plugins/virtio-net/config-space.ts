import { NetStatus } from './constants.js';

/** struct virtio_net_config (virtio 1.2 §5.1.4). */
export const NetConfigLayout = {
  mac: 0, // u8[6]
  status: 6, // le16
  maxVirtqueuePairs: 8, // le16
  mtu: 10, // le16
  speed: 12, // le32 (SPEED_DUPLEX, not offered: 0xffffffff = unknown)
  duplex: 16, // u8 (0xff = unknown)
  rssMaxKeySize: 17, // u8 (RSS not offered: 0)
  rssMaxIndirectionTableLength: 18, // le16
  supportedHashTypes: 20, // le32
} as const;
/** Bytes of the virtio-net config space the device exposes. */
export const NET_CONFIG_SIZE = 24;

/** The config space fields the device sets: MAC, link and announce status, queue pairs, MTU. */
export interface NetConfigValues {
  mac: Uint8Array;
  linkUp: boolean;
  announce: boolean;
  maxQueuePairs: number;
  mtu: number;
}

/** The config space bytes for the given values (every field is read-only for the driver). */
export function buildNetConfig(v: NetConfigValues): Uint8Array {
  const b = new Uint8Array(NET_CONFIG_SIZE);
  const dv = new DataView(b.buffer);
  b.set(v.mac.subarray(0, 6), NetConfigLayout.mac);
  dv.setUint16(
    NetConfigLayout.status,
    (v.linkUp ? NetStatus.LINK_UP : 0) | (v.announce ? NetStatus.ANNOUNCE : 0),
    true,
  );
  dv.setUint16(NetConfigLayout.maxVirtqueuePairs, v.maxQueuePairs, true);
  dv.setUint16(NetConfigLayout.mtu, v.mtu, true);
  dv.setUint32(NetConfigLayout.speed, 0xffff_ffff, true);
  dv.setUint8(NetConfigLayout.duplex, 0xff);
  return b;
}

/** Parses "52:54:00:12:34:56" (also with '-'); undefined when malformed. */
export function parseMac(s: string): Uint8Array | undefined {
  const m =
    /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(s);
  if (!m) return undefined;
  return Uint8Array.from(m.slice(1).map((h) => parseInt(h, 16)));
}

/** A MAC as "52:54:00:12:34:56". */
export const formatMac = (mac: Uint8Array): string =>
  [...mac.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');

/** A random unicast, locally administered MAC (first octet xxxxxx10). */
export function randomMac(random: (n: number) => Uint8Array): Uint8Array {
  const mac = random(6).slice(0, 6);
  mac[0] = (mac[0] & 0xfc) | 0x02;
  return mac;
}
