/**
 * fast-check arbitraries for packets with known field values, so a suite can build → decode and
 * compare. Exported through `@ovntap/packet/internal`:
 *
 *     import { arbitraries } from "@ovntap/packet/internal";
 *     fc.assert(fc.property(arbitraries.encapsulated, ({ frame, tunnelId }) => { … }));
 */
import fc from "fast-check";
import type { Arbitrary } from "fast-check";
import {
  buildArpFrame,
  buildErspan2,
  buildErspan3,
  buildGre,
  buildIcmpEchoFrame,
  buildTcpFrame,
  buildTransportFrame,
  buildUdpFrame,
} from "./build.js";
import type { Erspan2Spec, Erspan3Spec, GreSpec, TransportSpec, VlanSpec } from "./build.js";
import { ETHERTYPE_QINQ, ETHERTYPE_QINQ_LEGACY, ETHERTYPE_VLAN } from "./ethernet.js";

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (n: number): Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });

const ipv4 = bytes(4).map((b) => Buffer.from(b));
const ipv6 = bytes(16).map((b) => Buffer.from(b));
const mac = bytes(6).map((b) => Buffer.from(b));

const vlan: Arbitrary<VlanSpec> = fc.record({
  vid: fc.integer({ min: 0, max: 4095 }),
  pcp: fc.integer({ min: 0, max: 7 }),
  dei: fc.integer({ min: 0, max: 1 }),
  tpid: fc.constantFrom(ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_LEGACY),
});
const vlans = fc.array(vlan, { maxLength: 2 });

/** Addresses of one family, as octets. */
const addressPair = fc.oneof(fc.tuple(ipv4, ipv4), fc.tuple(ipv6, ipv6));

export type InnerKind = "tcp" | "udp" | "icmp" | "arp";

/** A mirrored frame and the fields it was built with. */
export interface InnerFrame {
  readonly kind: InnerKind;
  readonly frame: Buffer;
  readonly src: Buffer;
  readonly dst: Buffer;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly vlans: readonly VlanSpec[];
  readonly payload: Uint8Array;
}

const port = fc.integer({ min: 0, max: 65535 });
const payload = fc.uint8Array({ maxLength: 64 });

const tcpFrame: Arbitrary<InnerFrame> = fc
  .record({
    addrs: addressPair,
    srcPort: port,
    dstPort: port,
    seq: u32,
    ack: u32,
    flags: fc.integer({ min: 0, max: 0x1ff }),
    vlans,
    payload,
    srcMac: mac,
    dstMac: mac,
  })
  .map((r) => ({
    kind: "tcp",
    frame: buildTcpFrame({ ...r, src: r.addrs[0], dst: r.addrs[1] }),
    src: r.addrs[0],
    dst: r.addrs[1],
    srcPort: r.srcPort,
    dstPort: r.dstPort,
    vlans: r.vlans,
    payload: r.payload,
  }));

const udpFrame: Arbitrary<InnerFrame> = fc
  .record({ addrs: addressPair, srcPort: port, dstPort: port, vlans, payload })
  .map((r) => ({
    kind: "udp",
    frame: buildUdpFrame({ ...r, src: r.addrs[0], dst: r.addrs[1] }),
    src: r.addrs[0],
    dst: r.addrs[1],
    srcPort: r.srcPort,
    dstPort: r.dstPort,
    vlans: r.vlans,
    payload: r.payload,
  }));

const icmpFrame: Arbitrary<InnerFrame> = fc
  .record({ addrs: addressPair, id: port, seq: port, reply: fc.boolean(), vlans, payload })
  .map((r) => ({
    kind: "icmp",
    frame: buildIcmpEchoFrame({ ...r, src: r.addrs[0], dst: r.addrs[1] }),
    src: r.addrs[0],
    dst: r.addrs[1],
    srcPort: 0,
    dstPort: 0,
    vlans: r.vlans,
    payload: r.payload,
  }));

const arpFrame: Arbitrary<InnerFrame> = fc
  .record({
    op: fc.constantFrom(1, 2),
    senderMac: mac,
    senderIp: ipv4,
    targetMac: mac,
    targetIp: ipv4,
    vlans,
    pad: fc.boolean(),
  })
  .map((r) => ({
    kind: "arp",
    frame: buildArpFrame(r),
    src: r.senderIp,
    dst: r.targetIp,
    srcPort: 0,
    dstPort: 0,
    vlans: r.vlans,
    payload: new Uint8Array(0),
  }));

const innerFrame: Arbitrary<InnerFrame> = fc.oneof(tcpFrame, udpFrame, icmpFrame, arpFrame);

/** Transport addresses of one family (the builder picks IPv4 or IPv6 by `src`). */
const transportSpec: Arbitrary<TransportSpec> = fc
  .record({
    addrs: addressPair,
    ttl: fc.integer({ min: 0, max: 255 }),
    tos: fc.integer({ min: 0, max: 255 }),
    srcMac: mac,
    dstMac: mac,
    vlans,
    pad: fc.boolean(),
  })
  .map(({ addrs, ...t }) => ({ ...t, src: addrs[0], dst: addrs[1] }));

const greFields = fc.record({
  key: fc.option(u32, { nil: undefined }),
  seq: fc.option(u32, { nil: undefined }),
  csum: fc.boolean(),
});
const erspan2Fields = fc.record({
  sessionId: fc.integer({ min: 0, max: 1023 }),
  index: fc.integer({ min: 0, max: 0xfffff }),
  vlan: fc.integer({ min: 0, max: 4095 }),
  cos: fc.integer({ min: 0, max: 7 }),
  en: fc.integer({ min: 0, max: 3 }),
  truncated: fc.boolean(),
  seq: u32,
});
const platform = fc.record({
  id: fc.integer({ min: 0, max: 63 }),
  infoHigh: fc.integer({ min: 0, max: 0x03ffffff }),
  infoLow: u32,
});
const erspan3Fields = fc.record({
  sessionId: fc.integer({ min: 0, max: 1023 }),
  timestamp: u32,
  hwId: fc.integer({ min: 0, max: 63 }),
  vlan: fc.integer({ min: 0, max: 4095 }),
  cos: fc.integer({ min: 0, max: 7 }),
  bso: fc.integer({ min: 0, max: 3 }),
  truncated: fc.boolean(),
  sgt: fc.integer({ min: 0, max: 0xffff }),
  p: fc.boolean(),
  direction: fc.integer({ min: 0, max: 1 }),
  gra: fc.integer({ min: 0, max: 3 }),
  platform: fc.option(platform, { nil: undefined }),
  seq: u32,
});

export type Encapsulated =
  | {
      readonly kind: "gre";
      readonly spec: Omit<GreSpec, "inner">;
      readonly transport: TransportSpec;
      readonly inner: InnerFrame;
      readonly frame: Buffer;
    }
  | {
      readonly kind: "erspan2";
      readonly spec: Omit<Erspan2Spec, "inner">;
      readonly transport: TransportSpec;
      readonly inner: InnerFrame;
      readonly frame: Buffer;
    }
  | {
      readonly kind: "erspan3";
      readonly spec: Omit<Erspan3Spec, "inner">;
      readonly transport: TransportSpec;
      readonly inner: InnerFrame;
      readonly frame: Buffer;
    };

/** A transport frame carrying `inner` in GRE (TEB), ERSPAN II or ERSPAN III, with the values it was built from. */
const encapsulated: Arbitrary<Encapsulated> = fc.oneof(
  fc.record({ spec: greFields, transport: transportSpec, inner: innerFrame }).map((r): Encapsulated => ({
    kind: "gre",
    ...r,
    frame: buildTransportFrame(r.transport, buildGre({ ...r.spec, inner: r.inner.frame })),
  })),
  fc.record({ spec: erspan2Fields, transport: transportSpec, inner: innerFrame }).map((r): Encapsulated => ({
    kind: "erspan2",
    ...r,
    frame: buildTransportFrame(r.transport, buildErspan2({ ...r.spec, inner: r.inner.frame })),
  })),
  fc.record({ spec: erspan3Fields, transport: transportSpec, inner: innerFrame }).map((r): Encapsulated => ({
    kind: "erspan3",
    ...r,
    frame: buildTransportFrame(r.transport, buildErspan3({ ...r.spec, inner: r.inner.frame })),
  })),
);

/** A record for the pcap/pcapng writers; `nanos` is a whole number of µs when `precision` is "us". */
const record = (
  precision: "us" | "ns",
): Arbitrary<{ seconds: number; nanos: number; data: Buffer; originalLength: number }> =>
  fc
    .record({
      seconds: u32,
      frac: fc.integer({ min: 0, max: precision === "us" ? 999_999 : 999_999_999 }),
      data: fc.uint8Array({ maxLength: 200 }),
      extra: fc.integer({ min: 0, max: 2000 }),
    })
    .map((r) => ({
      seconds: r.seconds,
      nanos: precision === "us" ? r.frac * 1000 : r.frac,
      data: Buffer.from(r.data),
      originalLength: r.data.length + r.extra,
    }));

export const arbitraries = { innerFrame, encapsulated, transportSpec, vlan, record };
