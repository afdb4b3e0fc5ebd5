/**
 * Objects for the fake API server as the real cluster would hold them: a scheduled, running pod,
 * and the `ips.kubeovn.io` object Kube-OVN writes for a pod's address on a network.
 *
 *   fake.put("pods", podObject({ name: "web-1", namespace: "shop", labels: { app: "web" } }));
 *   fake.put("ips.kubeovn.io", kubeOvnIpObject({ pod: "sink", namespace: "tap", ip: "198.51.100.7" }));
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeObject } from "./fake-api-server.js";

export interface PodObjectOptions {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  /** spec.nodeName; null: not scheduled yet. Default "node-1". */
  nodeName?: string | null;
  phase?: "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";
  hostNetwork?: boolean;
  podIP?: string;
  /** Set metadata.deletionTimestamp (a terminating pod). */
  terminating?: boolean;
}

export function podObject(o: PodObjectOptions): KubeObject {
  const nodeName = o.nodeName === undefined ? "node-1" : o.nodeName;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: o.name,
      namespace: o.namespace,
      ...(o.labels ? { labels: { ...o.labels } } : {}),
      ...(o.terminating
        ? { deletionTimestamp: `${new Date().toISOString().slice(0, 19)}Z`, deletionGracePeriodSeconds: 30 }
        : {}),
    },
    spec: {
      containers: [{ name: "main", image: "registry.k8s.io/pause:3.10" }],
      ...(nodeName !== null ? { nodeName } : {}),
      ...(o.hostNetwork ? { hostNetwork: true } : {}),
    },
    status: {
      phase: o.phase ?? (nodeName === null ? "Pending" : "Running"),
      ...(o.podIP ? { podIP: o.podIP, podIPs: [{ ip: o.podIP }] } : {}),
    },
  };
}

export interface KubeOvnIpOptions {
  pod: string;
  namespace: string;
  /** Attachment network provider (`<nad>.<ns>[.ovn]`); the primary network when absent. */
  provider?: string;
  /** One address, or "v4,v6" for dual stack (spec.ipAddress as Kube-OVN writes it). */
  ip: string;
  subnet?: string;
  nodeName?: string;
  mac?: string;
}

/** An `ips.kubeovn.io` object as Kube-OVN names and fills it (pkg/apis/kubeovn/v1 IPSpec). */
export function kubeOvnIpObject(o: KubeOvnIpOptions): KubeObject {
  const attachment = o.provider !== undefined && o.provider !== "ovn";
  const name = attachment ? `${o.pod}.${o.namespace}.${o.provider}` : `${o.pod}.${o.namespace}`;
  const parts = o.ip.split(",");
  const v4 = parts.find((p) => p.includes("."));
  const v6 = parts.find((p) => p.includes(":"));
  const subnet = o.subnet ?? (attachment ? (o.provider!.split(".")[0] ?? "attach") : "ovn-default");
  return {
    apiVersion: "kubeovn.io/v1",
    kind: "IP",
    metadata: {
      name,
      labels: {
        [subnet]: "",
        "ovn.kubernetes.io/subnet": subnet,
        "ovn.kubernetes.io/node-name": o.nodeName ?? "node-1",
      },
    },
    spec: {
      podName: o.pod,
      namespace: o.namespace,
      subnet,
      attachSubnets: [],
      nodeName: o.nodeName ?? "node-1",
      ipAddress: o.ip,
      v4IpAddress: v4 ?? "",
      v6IpAddress: v6 ?? "",
      attachIps: [],
      macAddress: o.mac ?? "00:00:00:aa:bb:cc",
      attachMacs: [],
      containerID: "",
      podType: "",
    },
  };
}

/**
 * A self-signed certificate for 127.0.0.1 (openssl), for the fake's HTTPS and the in-cluster CA.
 * Throws with an install hint when openssl is missing.
 */
export function selfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), "ovntap-fake-tls-"));
  try {
    execFileSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
        ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "2"],
        ...["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
      ],
      { stdio: "pipe" },
    );
    return {
      key: readFileSync(join(dir, "key.pem"), "utf8"),
      cert: readFileSync(join(dir, "cert.pem"), "utf8"),
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error("openssl is needed for a test certificate: apt-get install openssl", { cause: err });
    }
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
