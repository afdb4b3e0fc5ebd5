/**
 * pcapng timestamps: a 64-bit count of units of 10^-n or 2^-n seconds (the interface's
 * `if_tsresol`), read as two 32-bit words, turned into seconds and nanoseconds. Shared by the
 * pcapng reader and the decap fast path; the result lands in `pcapngTime` so a packet costs no
 * allocation.
 */

/** Where `unitsToTime` leaves its result. */
export const pcapngTime = { seconds: 0, nanos: 0 };

const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** Units (hi, lo) at resolution `tsresol` → `pcapngTime`; exact, and without BigInt for 10^-n with n ≤ 9. */
export function unitsToTime(hi: number, lo: number, tsresol: number): void {
  if ((tsresol & 0x80) === 0 && tsresol <= 9) {
    // Long division in 16-bit limbs: every intermediate stays below 2^53.
    const d = POW10[tsresol]!;
    let cur = hi >>> 16;
    let q = Math.floor(cur / d);
    let r = cur - q * d;
    cur = r * 65536 + (hi & 0xffff);
    let qd = Math.floor(cur / d);
    r = cur - qd * d;
    q = q * 65536 + qd;
    cur = r * 65536 + (lo >>> 16);
    qd = Math.floor(cur / d);
    r = cur - qd * d;
    q = q * 65536 + qd;
    cur = r * 65536 + (lo & 0xffff);
    qd = Math.floor(cur / d);
    r = cur - qd * d;
    pcapngTime.seconds = q * 65536 + qd;
    pcapngTime.nanos = r * POW10[9 - tsresol]!;
    return;
  }
  const units = (BigInt(hi) << 32n) | BigInt(lo);
  const d = (tsresol & 0x80) === 0 ? 10n ** BigInt(tsresol) : 1n << BigInt(tsresol & 0x7f);
  pcapngTime.seconds = Number(units / d);
  pcapngTime.nanos = Number(((units % d) * 1_000_000_000n) / d);
}
