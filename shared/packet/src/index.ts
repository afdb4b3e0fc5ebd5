/**
 * @ovntap/packet — zero-copy decoders for mirrored traffic (Ethernet/802.1Q, IPv4, IPv6, TCP, UDP,
 * ICMP, ARP, GRE, ERSPAN II and III), builders for the same, and pcap / pcapng readers and writers.
 *
 * Decoders take a Buffer (or any Uint8Array) and an offset, return `{ ok: true, … }` or
 * `{ ok: false, reason, layer, at }`, never throw, and hand back views (`subarray`) — never copies.
 *
 *     import { decapsulate, decodeFrame, formatSummary, flowOf } from "@ovntap/packet";
 *
 *     const d = decapsulate(frame);                 // outer Ethernet/IP/GRE[/ERSPAN]
 *     if (d.ok) {
 *       const f = decodeFrame(d.inner, d.innerLinkType);
 *       formatSummary(f);                           // "IP 10.0.0.1.4242 > 10.0.0.2.80: Flags [S], …"
 *       if (f.ok) flowOf(f);                        // { protocol: 6, src, dst, srcPort, dstPort }
 *     }
 */

export type { DecodeFailure, DecodeReason, Layer } from "./result.js";

export { formatIp, formatMac, internetChecksum, parseIp, parseMac } from "./bytes.js";

export {
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  decodeArp,
  decodeEthernet,
  ETHERNET_HEADER_LENGTH,
  ETHERTYPE_ARP,
  ETHERTYPE_ERSPAN2,
  ETHERTYPE_ERSPAN3,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_QINQ,
  ETHERTYPE_QINQ_LEGACY,
  ETHERTYPE_TEB,
  ETHERTYPE_VLAN,
  MAX_VLAN_TAGS,
} from "./ethernet.js";
export type { Arp, Ethernet, VlanTag } from "./ethernet.js";

export {
  decodeIp,
  decodeIpv4,
  decodeIpv6,
  IPPROTO_AH,
  IPPROTO_DSTOPTS,
  IPPROTO_ESP,
  IPPROTO_FRAGMENT,
  IPPROTO_GRE,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_NONE,
  IPPROTO_ROUTING,
  IPPROTO_TCP,
  IPPROTO_UDP,
  ipv4ChecksumOk,
  IPV4_MIN_HEADER_LENGTH,
  IPV6_HEADER_LENGTH,
  MAX_IPV6_EXTENSION_HEADERS,
} from "./ip.js";
export type { Fragment, Ip, Ipv4, Ipv6 } from "./ip.js";

export {
  decodeIcmp,
  decodeIcmpv6,
  decodeTcp,
  decodeUdp,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_NS,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
} from "./transport.js";
export type { Icmp, Tcp, Udp } from "./transport.js";

export {
  decodeErspan2,
  decodeErspan3,
  decodeGre,
  ERSPAN2_HEADER_LENGTH,
  ERSPAN3_HEADER_LENGTH,
  ERSPAN3_PLATFORM_LENGTH,
  GRE_CHECKSUM_PRESENT,
  GRE_KEY_PRESENT,
  GRE_SEQUENCE_PRESENT,
  greChecksumOk,
} from "./gre.js";
export type { Erspan2, Erspan3, Erspan3Platform, Gre } from "./gre.js";

export { decapsulate, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_RAW } from "./decap.js";
export type {
  Decapsulated,
  Erspan2Decapsulated,
  Erspan3Decapsulated,
  GreDecapsulated,
  InnerLinkType,
  Outer,
} from "./decap.js";

export { decodeFrame, flowOf, formatDecapsulatedSummary, formatSummary } from "./frame.js";
export type { Flow, Frame, SummaryOptions, Transport } from "./frame.js";

export {
  buildArpFrame,
  buildErspan2,
  buildErspan3,
  buildEthernet,
  buildGre,
  buildIcmpEcho,
  buildIcmpEchoFrame,
  buildIp,
  buildIpv4,
  buildIpv6,
  buildTcp,
  buildTcpFrame,
  buildTransportFrame,
  buildUdp,
  buildUdpFrame,
} from "./build.js";
export type {
  Address,
  ArpFrameSpec,
  Erspan2Spec,
  Erspan3Spec,
  EthernetSpec,
  FrameSpec,
  GreSpec,
  IcmpEchoFrameSpec,
  IcmpEchoSpec,
  IpSpec,
  Ipv4Spec,
  Ipv6ExtensionSpec,
  Ipv6Spec,
  TcpFrameSpec,
  TcpSpec,
  TransportSpec,
  UdpFrameSpec,
  UdpSpec,
  VlanSpec,
} from "./build.js";

export {
  decodePcap,
  decodePcapHeader,
  encodePcap,
  encodePcapHeader,
  encodePcapRecord,
  encodePcapRecordHeader,
  PCAP_DEFAULT_SNAPLEN,
  PCAP_HEADER_LENGTH,
  PCAP_MAGIC_MICROSECONDS,
  PCAP_MAGIC_NANOSECONDS,
  PCAP_MAX_RECORD_LENGTH,
  PCAP_RECORD_HEADER_LENGTH,
  PcapFileWriter,
  PcapStreamReader,
} from "./pcap.js";
export type {
  ByteOrder,
  PcapFile,
  PcapHeader,
  PcapPushResult,
  PcapRecord,
  PcapRecordInput,
  PcapWriteOptions,
  TimestampPrecision,
} from "./pcap.js";

export {
  decodePcapng,
  encodePcapngInterface,
  encodePcapngPacket,
  encodePcapngSectionHeader,
  PCAPNG_MAX_BLOCK_LENGTH,
  PcapngFileWriter,
  PcapngStreamReader,
} from "./pcapng.js";
export type {
  PcapngFile,
  PcapngInterface,
  PcapngInterfaceSpec,
  PcapngPacket,
  PcapngPacketInput,
  PcapngPushResult,
  PcapngSection,
  PcapngSectionSpec,
} from "./pcapng.js";

export { CaptureFormatError, CaptureStreamReader, detectCaptureFormat, readCapture } from "./capture.js";
export type { CapturedPacket, CaptureFormat, CapturePushResult } from "./capture.js";

export { compileFilter, FilterSyntaxError, formatFilter, parseFilter } from "./filter.js";
export type { FilterDirection, FilterNode, FilterProtocol, FrameFilter } from "./filter.js";

export { decodePacketRecord, ipProtocolName, recordError } from "./packet-record.js";
export type { Encapsulation, PacketRecord, RecordReason } from "./packet-record.js";

export { decapCapture, decapFailure, decapFrame, decapFrameResult, isNotEncapsulated } from "./decap-file.js";
export type { DecapFrameResult, DecapOptions, DecapSink, DecapStats } from "./decap-file.js";
