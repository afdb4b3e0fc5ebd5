/** `ovntap --help` and `ovntap <verb> --help`. */
import { TTL_DEFAULT_SECONDS, TTL_MAX_SECONDS, TTL_MIN_SECONDS } from "@ovntap/contracts";
import type { Verb } from "./args.js";

const CONNECTION = `Connection:
  --nats URL                NATS server(s), comma-separated (default: $NATS_URL, else NATS_URL in
                            .lab/env here or at the repository root, else nats://127.0.0.1:4222);
                            credentials from the URL or NATS_CREDS_FILE, NATS_USER/NATS_PASSWORD, NATS_TOKEN
  --request-timeout DUR     how long to wait for a reply (default 10s)`;

const REQUEST = `Request:
  --request-id ID           idempotency token (default: a fresh UUID); re-running a command with the
                            same id is answered with the first reply instead of being done twice
  --principal WHO           who is asking, sent in the request; intake's policy decides whether to
                            trust it (default: $OVNTAP_PRINCIPAL, else the OS user)`;

const NAMESPACE = `  -n, --namespace NS        Kubernetes namespace (default: $OVNTAP_NAMESPACE, else "default")`;

const EXIT_CODES = `Exit codes:
  0  done
  1  refused (the error code, message and each field's problem are printed) or, with --wait, the
     mirror failed, degraded, or did not get there in time
  2  usage: unknown flag, missing or bad value, invalid spec (checked before anything is sent)
  3  no answer: NATS unreachable, nobody answering on ovntap.v1.req.<ns>, or the reply timed out;
     re-run with the same --request-id to retry safely`;

export const MAIN_HELP = `ovntap — mirror Kube-OVN / OVN / Open vSwitch traffic, on request, with an owner and an expiry

Usage:
  ovntap <command> [flags]

Commands:
  create    ask for a mirror (from flags or -f spec.yaml)
  delete    remove a mirror
  get       show one mirror
  list      show the mirrors of a namespace
  extend    set a mirror to expire TTL from now
  events    print the audit trail (lifecycle events), optionally following it
  capture   write a mirror's packets to a pcap or pcapng file, or print them like tcpdump
  decode    print each packet of a capture file: tunnel, key/session, addresses (--json: one object each)
  decap     strip GRE/ERSPAN from a capture file and write the mirrored frames to another

Examples:
  ovntap create web -n shop --pod web-0 --direction both --gre-sink 10.0.0.9 --wait
  ovntap create -f mirror.yaml
  ovntap list -n shop -l team=payments
  ovntap events -n shop --mirror web --follow
  ovntap delete web -n shop
  ovntap decap erspan.pcap -w inner.pcap --session 7

Run 'ovntap <command> --help' for its flags. 'ovntap --version' prints the version.

${EXIT_CODES}
`;

const HELP: Record<Verb, string> = {
  create: `Ask for a mirror. The spec comes from flags or from a file (-f); it is checked against the
contract before it is sent.

Usage:
  ovntap create NAME [-n NS] SOURCE --direction DIR TARGET [flags]
  ovntap create -f FILE [NAME] [-n NS] [--wait]

Source (one kind):
  --pod NAME                a pod in the namespace; repeat or comma-separate for several
  --port LSP                a raw OVN logical switch port (admin policy); repeatable
  -l, --selector SEL        pods matching a label selector, followed as they come and go
                            (app=web,tier in (a,b),!legacy)
  --ovs-node NODE           ports and/or VLANs of an Open vSwitch bridge on one node, mirrored by
  --ovs-bridge BR           that node's agent (admin policy):
    --ovs-port PORT         an OVS port of the bridge; repeat or comma-separate for several
    --ovs-vlan V            a VLAN 0..4095 on the bridge; repeatable (VLANs alone need --direction both)
Direction:
  --direction DIR           ingress (to the pod/port), egress (from it) or both
Target (one):
  --gre-sink IP             GRE to IP (or pod:NAMESPACE/NAME for a receiving pod)
    --key K                 GRE key 0..4294967295 (allocated, unique per sink, when absent)
  --sink-pod NS/NAME        GRE to a receiving pod, its address read from Kube-OVN's ips.kubeovn.io
                            and followed if it changes (the same as --gre-sink pod:NS/NAME)
    --provider P            the pod's attachment network (e.g. attachnet.default.ovn) rather than
                            its primary network; also with --gre-sink/--erspan-sink pod:NS/NAME
  --erspan-sink IP          ERSPAN to IP (or pod:NAMESPACE/NAME)
    --session-id S          ERSPAN session id 0..1023 (allocated when absent)
    --erspan-version 1|2    1 = type II (default; the only one OVN emits), 2 = type III (ovs sources)
  --collector               the capture exporter is the sink
  --output-port PORT        ovs sources: a port of the same bridge that receives the copies (OVS
                            dedicates it to mirroring)
  --output-vlan V           ovs sources: flood the copies on VLAN 1..4095 of the same bridge
Receiving link (ovs sources with --gre-sink or --erspan-sink; made, owned and removed by the
node agent, as the Kube-OVN guide's 'ip link add … type gretap|erspan'):
  --receiver-link NAME      the link to create at the sink
    --receiver-netns NETNS  in this named network namespace on the source's node, or
    --receiver-pod NS/NAME  in this receiving pod's network namespace
    --receiver-dev DEV      its lower device, e.g. the pod's attachment interface net1
Spec:
  --name NAME               the mirror's name (or the first argument)
${NAMESPACE}
  --ttl DUR                 lifetime, ${TTL_MIN_SECONDS}s..${TTL_MAX_SECONDS / 86400}d (seconds, or 90m, 2h, 1d; default ${TTL_DEFAULT_SECONDS / 3600}h)
  --snaplen N               bytes kept of each frame, 14..65535 (whole frames when absent)
  --label K=V               a label on the mirror; repeatable
  -f, --file FILE           a MirrorSpec in YAML or JSON ('-' reads standard input); --name and
                            --namespace may fill in what it leaves out, other spec flags are refused
Waiting and output:
  --wait                    return once the mirror is Active; exit 1 if it fails, degrades, or
                            --timeout passes (progress goes to stderr)
  --timeout DUR             how long --wait waits (default 2m)
  -o, --output FMT          table (a summary line), json or yaml (the mirror and its status)

${REQUEST}

${CONNECTION}

Examples:
  ovntap create web -n shop --pod web-0 --pod web-1 --direction both --gre-sink 10.0.0.9 --key 99
  ovntap create db -n shop --pod db-0 --direction ingress --erspan-sink 10.0.0.9 --ttl 30m --wait
  ovntap create tap -n shop --pod web-0 --direction egress --collector --snaplen 128 --label team=sre
  ovntap create sw -n ops --ovs-node worker-1 --ovs-bridge br-int --ovs-port veth1 --direction both \\
    --output-port veth3
  ovntap create up -n ops --ovs-node worker-1 --ovs-bridge br-ex --ovs-vlan 100 --direction both --gre-sink 10.0.0.9
  cat mirror.yaml | ovntap create -f - --request-id deploy-42

A spec file:
  name: web
  namespace: shop
  sources: { type: selector, matchLabels: { app: web } }
  direction: both
  target: { type: gre, sink: 10.0.0.9 }
  filter: { protocols: [tcp], ports: [443] }
  ttlSeconds: 7200

${EXIT_CODES}
`,
  delete: `Remove a mirror: its OVN/OVS rows, then its record.

Usage:
  ovntap delete NAME [-n NS] [--wait [--timeout DUR]]

Flags:
${NAMESPACE}
  --wait                    return once the mirror is gone (exit 1 on failure or timeout)
  --timeout DUR             how long --wait waits (default 2m)
  -o, --output FMT          table (a summary line), json or yaml

${REQUEST}

${CONNECTION}

Examples:
  ovntap delete web -n shop
  ovntap delete web -n shop --wait --timeout 1m

${EXIT_CODES}
`,
  get: `Show one mirror: its phase, sink, key, ports and expiry.

Usage:
  ovntap get NAME [-n NS] [-o table|json|yaml]

Flags:
${NAMESPACE}
  -o, --output FMT          table (default), json or yaml (the whole record and status)

${REQUEST}

${CONNECTION}

Examples:
  ovntap get web -n shop
  ovntap get web -n shop -o yaml

${EXIT_CODES}
`,
  list: `Show the mirrors of a namespace.

Usage:
  ovntap list [-n NS] [-l SELECTOR] [-o table|json|yaml]

Columns: NAME NAMESPACE PHASE SINK KEY DIRECTION PORTS EXPIRES AGE

Flags:
${NAMESPACE}
  -l, --selector SEL        only mirrors whose labels match (app=web,tier in (a,b),!legacy)
  -o, --output FMT          table (default), json (an array of {mirror, status}) or yaml

${REQUEST}

${CONNECTION}

Examples:
  ovntap list -n shop
  ovntap list -n shop -l team=payments -o json

${EXIT_CODES}
`,
  extend: `Set a mirror to expire TTL after intake accepts this request (the old expiry is replaced,
not added to).

Usage:
  ovntap extend NAME [-n NS] --ttl DUR

Flags:
${NAMESPACE}
  --ttl DUR                 ${TTL_MIN_SECONDS}s..${TTL_MAX_SECONDS / 86400}d: seconds, or 90m, 2h, 1d
  -o, --output FMT          table (a summary line), json or yaml

${REQUEST}

${CONNECTION}

Examples:
  ovntap extend web -n shop --ttl 2h

${EXIT_CODES}
`,
  events: `Print lifecycle events from the audit trail (the OVNTAP_EVENTS JetStream stream), one line
each: time, namespace/mirror, type, generation, principal, detail.

Usage:
  ovntap events [-n NS] [--mirror NAME] [--since DUR|TIME] [--follow] [-o text|json|yaml]

Flags:
  -n, --namespace NS        only this namespace (default: every namespace)
  --mirror NAME             only this mirror (or the first argument); in $OVNTAP_NAMESPACE, else
                            "default", when -n is absent
  --since DUR|TIME          only events from DUR ago (10m, 2h) or since an RFC 3339 time
  --follow                  keep printing new events until interrupted (Ctrl-C)
  -o, --output FMT          text (default), json (one object per line, with its stream seq) or yaml

${CONNECTION}

Examples:
  ovntap events -n shop --mirror web
  ovntap events -n shop --follow
  ovntap events --since 1h -o json | jq 'select(.type == "failed")'

Exit codes: 0 done, 1 the stream cannot be read, 2 usage, 3 NATS unreachable.
`,
  capture: `Receive a mirror's packets from every node (the capture exporters' batches on
ovntap.v1.capture.<ns>.<mirror>.*) and write them as pcap or pcapng, or print one line per packet
like tcpdump. Stops at --count, at --duration, or on Ctrl-C; the file is complete either way.

Usage:
  ovntap capture MIRROR [-n NS] [-w FILE | -w -] [--pcapng] [--count N] [--duration DUR] [--filter EXPR]

Flags:
${NAMESPACE}
  -w, --write FILE          write a pcap (nanosecond timestamps) to FILE; '-' writes it to standard
                            output, for a pipe into tshark, tcpdump or Wireshark (wireshark -k -i -)
  --pcapng                  write pcapng instead: one interface per mirror (if_name NS/MIRROR, the
                            spec, read with a get request, in its description and comment)
  --count N                 stop after exactly N packets (after --filter)
  --duration DUR            stop after DUR (seconds, or 500ms, 90s, 5m)
  --filter EXPR             keep only matching packets (the mirrored frames, after decapsulation):
                            tcp udp icmp icmp6 arp ip ip6, [src|dst] host ADDR, [src|dst] net CIDR,
                            [tcp|udp] [src|dst] port N, portrange A-B, and/&&, or/||, not/!, ( ).
                            As in tcpdump, 'and' and 'or' have equal precedence, left to right

Losses are never silent: packets the exporters dropped (reported in each batch), batches lost in
transit (gaps in a node's sequence) and batches dropped here because the output was too slow are
announced on stderr as they happen and counted in the closing summary. With -w and a terminal on
stderr, a live counter shows packets, bytes, drops and lost batches.

${CONNECTION}

Examples:
  ovntap capture web -n shop
  ovntap capture web -n shop -w web.pcap --count 1000
  ovntap capture web -n shop -w - --filter 'tcp port 443' | tshark -r -
  ovntap capture web -n shop -w web.pcapng --pcapng --duration 1m

Exit codes: 0 done, 1 the file cannot be written or NATS refused the subscription, 2 usage, 3 NATS
unreachable.
`,
  decode: `Print every packet of a capture file, in order: for a GRE / ERSPAN packet from a transport
interface, the tunnel and then the mirrored packet; any other frame as it is. Works offline (no
NATS). The file is read as a stream: it may be larger than memory, and '-' reads standard input.

Usage:
  ovntap decode FILE [--json]

Flags:
  --json                    one JSON object per packet instead of a line:
      {"n":1,"encap":"erspan2","key":null,"session":7,"src":"10.16.0.5","dst":"10.16.0.9",
       "proto":"tcp","sport":40000,"dport":443,"len":118,"error":null}
    n        position in the file, from 1
    encap    gre (IP protocol 47), erspan2 (GRE 0x88BE, ERSPAN type II, version field 1),
             erspan3 (GRE 0x22EB, type III, version field 2), or none
    key      the GRE key, when the GRE header has one; else null
    session  the 10-bit ERSPAN session id; else null
    src dst proto sport dport
             of the innermost IP packet (the mirrored one; ARP: sender and target addresses);
             proto is tcp, udp, icmp, icmpv6, arp, gre, … or ip-proto-N
    len      the frame's length on the wire as the file records it (tshark's frame.len)
    error    null, or "<reason> <layer>" for the first problem: a header cut short
             ("truncated gre"), an impossible field ("bad-version erspan"), a length field longer
             than the frame ("bad-length ipv4"), or what ovntap does not unwrap
             ("unsupported-protocol gre"); the other fields hold what was decoded before it
  A field whose octets were not captured is null. A snaplen cut inside a payload is not an error.

Examples:
  ovntap decode mirror.pcap
  ovntap decode mirror.pcapng --json | jq -c 'select(.error != null)'
  tcpdump -i eth1 -w - 'ip proto 47' | ovntap decode - --json

Exit codes: 0 done, 1 the file cannot be read or is not a (whole) pcap/pcapng file (the packets
before the damage are printed), 2 usage.
`,
  decap: `Strip GRE / ERSPAN II / ERSPAN III from every packet of a capture file (pcap or pcapng, as
written by tcpdump on a sink or by any switch's ERSPAN collector) and write the mirrored frames, with
their timestamps, to another file. Works offline (no NATS); fast enough for multi-gigabyte files.

Usage:
  ovntap decap IN -w OUT [--key K | --session S] [--pcapng]

Flags:
  -w, --write OUT           the capture to write; '-' writes it to standard output. pcap, unless OUT
                            ends in .pcapng or --pcapng is given
  --pcapng                  write pcapng: one interface per inner link type (and per input interface,
                            keeping its name), so mixed Ethernet and IP-only frames all fit
  --key K                   keep only GRE packets with key K (0..4294967295)
  --session S               keep only ERSPAN packets with session id S (0..1023)
IN is a pcap or pcapng file, '-' for standard input.

The mirrored frames: Ethernet for GRE (0x6558), ERSPAN II and ERSPAN III frame type 0; IP without
a link layer (LINKTYPE_RAW) for GRE carrying IPv4/IPv6 directly and ERSPAN III frame type 2. A pcap
holds one link type, that of the first frame written: frames of the other are left out, counted,
and make the exit code 1 (write pcapng to keep them all). Original lengths come from the outer IP
length, so a snaplen-cut capture stays a snaplen-cut capture.

Nothing is left out silently: the summary on stderr counts every packet read — written, not
GRE/ERSPAN (by reason), malformed or not unwrapped (by reason), of another tunnel.

Examples:
  ovntap decap sink.pcap -w inner.pcap
  ovntap decap erspan.pcapng -w inner.pcapng --session 7
  ovntap decap gre.pcap -w - --key 99 | tshark -r -

Exit codes: 0 done, 1 the input cannot be read or is damaged (what came before is written), the
output cannot be written, or frames were left out for their link type; 2 usage.
`,
};

export function verbHelp(verb: Verb): string {
  return HELP[verb];
}
