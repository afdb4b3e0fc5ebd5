/**
 * Big-endian copies of what our (little-endian) writers produce, to test readers on the other byte
 * order (draft-ietf-opsawg-pcap §3: fields are in the writer's byte order; pcapng §3.6.1 likewise
 * per section). The integration suite checks tshark reads these copies as it reads the originals.
 * Test tooling, exported through `@ovntap/packet/internal`.
 */

/** Swap every multi-octet field of a pcap file: header (magic, versions, reserved, snaplen, linktype) and record headers. */
export function pcapToBigEndian(le: Buffer): Buffer {
  const b = Buffer.from(le);
  const swap32 = (at: number): void => void b.writeUInt32BE(le.readUInt32LE(at), at);
  const swap16 = (at: number): void => void b.writeUInt16BE(le.readUInt16LE(at), at);
  swap32(0);
  swap16(4);
  swap16(6);
  for (const at of [8, 12, 16, 20]) swap32(at);
  let p = 24;
  while (p + 16 <= le.length) {
    for (let i = 0; i < 16; i += 4) swap32(p + i);
    p += 16 + le.readUInt32LE(p + 8);
  }
  return b;
}

/**
 * Swap a pcapng file written by our writer: block headers and trailers, SHB magic/versions/section
 * length, IDB link type/snaplen, EPB fixed fields, option headers, and the numeric options we write
 * (epb_flags). String options and if_tsresol (one octet) have no byte order.
 */
export function pcapngToBigEndian(le: Buffer): Buffer {
  const b = Buffer.from(le);
  const swap32 = (at: number): void => void b.writeUInt32BE(le.readUInt32LE(at), at);
  const swap16 = (at: number): void => void b.writeUInt16BE(le.readUInt16LE(at), at);
  const options = (from: number, to: number, numeric: Set<number>): void => {
    let p = from;
    while (p + 4 <= to) {
      const code = le.readUInt16LE(p);
      const len = le.readUInt16LE(p + 2);
      swap16(p);
      swap16(p + 2);
      if (code === 0) return;
      if (numeric.has(code) && len === 4) swap32(p + 4);
      p += 4 + ((len + 3) & ~3);
    }
  };
  let p = 0;
  while (p + 12 <= le.length) {
    const type = le.readUInt32LE(p);
    const len = le.readUInt32LE(p + 4);
    swap32(p);
    swap32(p + 4);
    swap32(p + len - 4);
    if (type === 0x0a0d0d0a) {
      swap32(p + 8);
      swap16(p + 12);
      swap16(p + 14);
      b.writeBigInt64BE(le.readBigInt64LE(p + 16), p + 16);
      options(p + 24, p + len - 4, new Set());
    } else if (type === 1) {
      swap16(p + 8);
      swap32(p + 12);
      options(p + 16, p + len - 4, new Set());
    } else if (type === 6) {
      for (const o of [8, 12, 16, 20, 24]) swap32(p + o);
      const caplen = le.readUInt32LE(p + 20);
      options(p + 28 + ((caplen + 3) & ~3), p + len - 4, new Set([2]));
    }
    p += len;
  }
  return b;
}
