/** virtio-net feature bits, header and control-queue constants (virtio 1.2 §5.1). */
const bit = (n: number): bigint => 1n << BigInt(n);

/** virtio-net feature bits (§5.1.3) as bigint masks. */
export const NetFeature = {
  CSUM: bit(0),
  GUEST_CSUM: bit(1),
  CTRL_GUEST_OFFLOADS: bit(2),
  MTU: bit(3),
  MAC: bit(5),
  GUEST_TSO4: bit(7),
  GUEST_TSO6: bit(8),
  GUEST_ECN: bit(9),
  GUEST_UFO: bit(10),
  HOST_TSO4: bit(11),
  HOST_TSO6: bit(12),
  HOST_ECN: bit(13),
  HOST_UFO: bit(14),
  MRG_RXBUF: bit(15),
  STATUS: bit(16),
  CTRL_VQ: bit(17),
  CTRL_RX: bit(18),
  CTRL_VLAN: bit(19),
  CTRL_RX_EXTRA: bit(20),
  GUEST_ANNOUNCE: bit(21),
  MQ: bit(22),
  CTRL_MAC_ADDR: bit(23),
} as const;

/** The guest-side offload bits CTRL_GUEST_OFFLOADS may switch (§5.1.6.5.6.1). */
export const GUEST_OFFLOAD_MASK =
  NetFeature.GUEST_CSUM | NetFeature.GUEST_TSO4 | NetFeature.GUEST_TSO6 | NetFeature.GUEST_ECN | NetFeature.GUEST_UFO;

/** struct virtio_net_hdr with num_buffers: 12 bytes whenever VIRTIO_F_VERSION_1 is negotiated (§5.1.6.1). */
export const VNET_HDR_SIZE = 12;
/** virtio_net_hdr.flags: the checksum at csum_start + csum_offset still has to be computed. */
export const VNET_HDR_F_NEEDS_CSUM = 1;
/** virtio_net_hdr.flags (device to driver): the checksum was already checked. */
export const VNET_HDR_F_DATA_VALID = 2;
/** virtio_net_hdr.flags: the header carries receive-segment-coalescing counts. */
export const VNET_HDR_F_RSC_INFO = 4;
/** virtio_net_hdr.gso_type: not a GSO frame. */
export const VNET_HDR_GSO_NONE = 0;
/** virtio_net_hdr.gso_type: TCP over IPv4 segmentation (TSO4). */
export const VNET_HDR_GSO_TCPV4 = 1;
/** virtio_net_hdr.gso_type: UDP fragmentation offload (UFO). */
export const VNET_HDR_GSO_UDP = 3;
/** virtio_net_hdr.gso_type: TCP over IPv6 segmentation (TSO6). */
export const VNET_HDR_GSO_TCPV6 = 4;
/** virtio_net_hdr.gso_type: UDP segmentation (USO). */
export const VNET_HDR_GSO_UDP_L4 = 5;
/** virtio_net_hdr.gso_type bit: the TCP segments carry ECN (needs the ECN feature). */
export const VNET_HDR_GSO_ECN = 0x80;

/** Largest frame the device moves, header included (64 KiB TSO frame + Ethernet + header; as Firecracker). */
export const MAX_FRAME_WITH_HDR = 65562;
/** Ethernet header length; a frame shorter than this is malformed. */
export const ETH_HLEN = 14;
/** The smallest MTU the config accepts (the IPv4 minimum). */
export const MIN_MTU = 68;
/** The largest MTU the config accepts. */
export const MAX_MTU = 65535;

/** Config-space status bits. */
export const NetStatus = { LINK_UP: 1, ANNOUNCE: 2 } as const;

/** Control queue classes, commands and acks (§5.1.6.5). */
export const Ctrl = {
  OK: 0,
  ERR: 1,
  RX: 0,
  RX_PROMISC: 0,
  RX_ALLMULTI: 1,
  RX_ALLUNI: 2,
  RX_NOMULTI: 3,
  RX_NOUNI: 4,
  RX_NOBCAST: 5,
  MAC: 1,
  MAC_TABLE_SET: 0,
  MAC_ADDR_SET: 1,
  VLAN: 2,
  ANNOUNCE: 3,
  ANNOUNCE_ACK: 0,
  MQ: 4,
  MQ_VQ_PAIRS_SET: 0,
  GUEST_OFFLOADS: 5,
  GUEST_OFFLOADS_SET: 0,
} as const;

/** VIRTQUEUE_PAIRS_MIN / MAX (§5.1.6.5.5). */
export const MAX_QUEUE_PAIRS = 0x8000;
/** What this device allows in config (each pair is one tap queue fd). */
export const CONFIG_MAX_QUEUE_PAIRS = 16;
/** Entries a MAC_TABLE_SET may carry before it is refused (bounds the guest's allocation on us). */
export const MAX_MAC_TABLE_ENTRIES = 256;

/** Chains handled per wakeup before yielding the loop. */
export const QUEUE_BUDGET = 256;
/** Queue size (entries) of each queue when the device is not given one. */
export const DEFAULT_QUEUE_SIZE = 256;
