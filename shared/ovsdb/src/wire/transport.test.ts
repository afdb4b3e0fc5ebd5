import { describe, expect, it } from "vitest";
import { OptionsError } from "../errors.js";
import { parseRemote, parseRemotes, validateSslOptions } from "./transport.js";

describe("parseRemote", () => {
  it("parses unix, tcp and ssl remotes as Open vSwitch spells them", () => {
    expect(parseRemote("unix:/run/ovn/ovnnb_db.sock")).toMatchObject({
      kind: "unix",
      path: "/run/ovn/ovnnb_db.sock",
    });
    expect(parseRemote("tcp:127.0.0.1:6641")).toMatchObject({ kind: "tcp", host: "127.0.0.1", port: 6641 });
    expect(parseRemote("ssl:ovn-nb.kube-system:6641")).toMatchObject({
      kind: "ssl",
      host: "ovn-nb.kube-system",
    });
    expect(parseRemote("tcp:[::1]:6641")).toMatchObject({ kind: "tcp", host: "::1", port: 6641 });
    expect(parseRemote("ssl:[fd00::10]")).toMatchObject({ host: "fd00::10", port: 6640 });
    expect(parseRemote("tcp:10.0.0.1")).toMatchObject({ port: 6640 }); // RFC 7047 §6
  });

  it.each([
    ["ptcp:6641", /passive remotes/],
    ["tcp:::1:6641", /IPv6 addresses in brackets/],
    ["tcp:[::1", /unclosed/],
    ["tcp:[nope]:1", /not an IPv6 address/],
    ["tcp:host:0", /not a TCP port/],
    ["tcp:host:70000", /not a TCP port/],
    ["tcp::6641", /no host/],
    ["unix:", /no socket path/],
    ["/run/x.sock", /is not unix:PATH/],
  ])("rejects %s", (text, msg) => {
    expect(() => parseRemote(text)).toThrow(OptionsError);
    expect(() => parseRemote(text)).toThrow(msg);
  });

  it("splits comma-separated lists and names the faulty element", () => {
    expect(parseRemotes("tcp:a:1,tcp:b:2").map((r) => r.text)).toEqual(["tcp:a:1", "tcp:b:2"]);
    expect(() => parseRemotes(["tcp:a:1", "bogus"])).toThrow(/remote\[1\]/);
  });
});

describe("validateSslOptions", () => {
  it("needs a key, a certificate and a CA, as PEM or file, not both", () => {
    expect(() => validateSslOptions(undefined)).toThrow(/ssl/);
    expect(() => validateSslOptions({ privateKeyFile: "k", certificateFile: "c" })).toThrow(/ssl.caCert/);
    expect(() =>
      validateSslOptions({ privateKey: "k", privateKeyFile: "k", certificateFile: "c", caCertFile: "a" }),
    ).toThrow(/either privateKey or privateKeyFile/);
    expect(() => validateSslOptions({ privateKey: "k", certificate: "c", caCertFile: "a" })).not.toThrow();
  });
});
