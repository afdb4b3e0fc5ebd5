/**
 * Stream transports for OVSDB remotes, spelled as Open vSwitch spells them
 * (ovsdb-server(1) "Remotes", ovs-vsctl --db):
 *
 *   unix:/var/run/ovn/ovnnb_db.sock
 *   tcp:127.0.0.1:6641      tcp:[::1]:6641      tcp:ovn-nb.kube-system  (port 6640, RFC 7047 §6)
 *   ssl:192.168.0.10:6641   (client key + certificate + CA, see SslOptions)
 *
 *   const stream = await openTransport(parseRemote("tcp:127.0.0.1:6641"), { connectTimeoutMs: 5000 });
 */
import { readFileSync } from "node:fs";
import { isIP, connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { OptionsError } from "../errors.js";

/** RFC 7047 §6: the IANA-assigned OVSDB port, used when a tcp/ssl remote omits one. */
export const OVSDB_DEFAULT_PORT = 6640;

export type Remote =
  | { readonly kind: "unix"; readonly path: string; readonly text: string }
  | { readonly kind: "tcp" | "ssl"; readonly host: string; readonly port: number; readonly text: string };

/** Parses one remote string. Throws OptionsError naming `field`. */
export function parseRemote(text: string, field = "remote"): Remote {
  const s = text.trim();
  const colon = s.indexOf(":");
  const scheme = colon === -1 ? "" : s.slice(0, colon);
  const rest = colon === -1 ? "" : s.slice(colon + 1);
  if (scheme === "unix") {
    if (!rest) throw new OptionsError(field, `"${text}" has no socket path (unix:PATH)`);
    return { kind: "unix", path: rest, text: s };
  }
  if (scheme !== "tcp" && scheme !== "ssl") {
    throw new OptionsError(
      field,
      `"${text}" is not unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT (passive remotes like ptcp: are for servers)`,
    );
  }
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    // IPv6 literal in brackets, as OVS writes it: tcp:[::1]:6641
    const close = rest.indexOf("]");
    if (close === -1) throw new OptionsError(field, `"${text}" has an unclosed '[' around an IPv6 address`);
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "" && !after.startsWith(":"))
      throw new OptionsError(field, `"${text}": expected ':' after ']'`);
    portText = after === "" ? undefined : after.slice(1);
    if (isIP(host) !== 6) throw new OptionsError(field, `"${host}" in "${text}" is not an IPv6 address`);
  } else {
    const parts = rest.split(":");
    if (parts.length > 2) {
      throw new OptionsError(field, `"${text}": write IPv6 addresses in brackets, e.g. ${scheme}:[::1]:6641`);
    }
    host = parts[0] ?? "";
    portText = parts[1];
  }
  if (!host) throw new OptionsError(field, `"${text}" has no host`);
  let port = OVSDB_DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new OptionsError(field, `"${portText}" in "${text}" is not a TCP port (1-65535)`);
    }
    port = Number(portText);
  }
  return { kind: scheme, host, port, text: s };
}

/**
 * Parses a remote list. OVN tools accept several remotes separated by commas
 * ("tcp:a:6641,tcp:b:6641"); the client tries them in turn when reconnecting.
 */
export function parseRemotes(value: string | readonly string[], field = "remote"): Remote[] {
  const items = (typeof value === "string" ? [value] : value).flatMap((v) => v.split(","));
  const remotes = items.map((v) => v.trim()).filter((v) => v !== "");
  if (remotes.length === 0) throw new OptionsError(field, "no remote given");
  return remotes.map((r, i) => parseRemote(r, remotes.length > 1 ? `${field}[${i}]` : field));
}

/**
 * SSL client settings. ovsdb-server (stream-ssl) requires a client certificate signed by
 * its CA, so all three are needed, either as PEM text or as file paths (files are read on
 * every connect, so rotated certificates are picked up on reconnect).
 */
export interface SslOptions {
  privateKey?: string | Buffer;
  certificate?: string | Buffer;
  caCert?: string | Buffer;
  privateKeyFile?: string;
  certificateFile?: string;
  caCertFile?: string;
  /**
   * Check that the server certificate names the host we dialled. Default true. Open vSwitch
   * itself only checks the CA signature, and `ovs-pki` certificates carry no host names:
   * set false for those.
   */
  verifyHostname?: boolean;
  /** SNI / name to verify, when it differs from the remote's host. */
  servername?: string;
}

export interface TransportOptions {
  /** Give up on one connection attempt after this long. */
  connectTimeoutMs: number;
  ssl?: SslOptions | undefined;
}

export type TransportStream = Socket | TLSSocket;

/** Validates SSL options once (at client construction), naming the faulty field. */
export function validateSslOptions(ssl: SslOptions | undefined, field = "ssl"): void {
  if (!ssl) throw new OptionsError(field, "an ssl: remote needs privateKey, certificate and caCert");
  const pairs: [keyof SslOptions, keyof SslOptions][] = [
    ["privateKey", "privateKeyFile"],
    ["certificate", "certificateFile"],
    ["caCert", "caCertFile"],
  ];
  for (const [pem, file] of pairs) {
    if (ssl[pem] === undefined && ssl[file] === undefined) {
      throw new OptionsError(`${field}.${pem}`, `missing (give ${pem} as PEM or ${file} as a path)`);
    }
    if (ssl[pem] !== undefined && ssl[file] !== undefined) {
      throw new OptionsError(`${field}.${pem}`, `give either ${pem} or ${file}, not both`);
    }
  }
}

function tlsOptions(remote: Remote & { kind: "tcp" | "ssl" }, ssl: SslOptions): ConnectionOptions {
  const pem = (v: string | Buffer | undefined, file: string | undefined) => v ?? readFileSync(file as string);
  const opts: ConnectionOptions = {
    host: remote.host,
    port: remote.port,
    key: pem(ssl.privateKey, ssl.privateKeyFile),
    cert: pem(ssl.certificate, ssl.certificateFile),
    ca: pem(ssl.caCert, ssl.caCertFile),
    rejectUnauthorized: true,
  };
  if (ssl.servername !== undefined) opts.servername = ssl.servername;
  else if (isIP(remote.host) === 0) opts.servername = remote.host;
  if (ssl.verifyHostname === false) opts.checkServerIdentity = () => undefined;
  return opts;
}

/** Connects to a remote; resolves once the stream is usable (after the TLS handshake for ssl:). */
export function openTransport(remote: Remote, options: TransportOptions): Promise<TransportStream> {
  return new Promise<TransportStream>((resolve, reject) => {
    let stream: TransportStream;
    const readyEvent = remote.kind === "ssl" ? "secureConnect" : "connect";
    try {
      if (remote.kind === "unix") stream = netConnect({ path: remote.path });
      else if (remote.kind === "tcp") stream = netConnect({ host: remote.host, port: remote.port });
      else {
        validateSslOptions(options.ssl);
        stream = tlsConnect(tlsOptions(remote, options.ssl as SslOptions));
      }
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new Error(`connecting to ${remote.text} timed out after ${options.connectTimeoutMs} ms`));
    }, options.connectTimeoutMs);
    const onError = (err: Error) => {
      clearTimeout(timer);
      stream.destroy();
      reject(err);
    };
    stream.once("error", onError);
    stream.once(readyEvent, () => {
      clearTimeout(timer);
      stream.off("error", onError);
      if (remote.kind !== "unix") stream.setNoDelay(true);
      resolve(stream);
    });
  });
}
