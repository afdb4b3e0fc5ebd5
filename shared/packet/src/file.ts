/**
 * A write-behind file for capture writers: small writes are copied into one reusable buffer and
 * written when it fills, so a packet's bytes may be reused by the caller as soon as `write`
 * returns (the `cap` trap in STYLE.md), and a file gets one write(2) per ~1 MiB, not per packet.
 */
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";

const DEFAULT_BUFFER = 1 << 20;

export class BufferedFile {
  readonly #fh: FileHandle;
  readonly #buf: Buffer;
  #used = 0;
  #closed = false;

  private constructor(fh: FileHandle, size: number) {
    this.#fh = fh;
    this.#buf = Buffer.allocUnsafe(size);
  }

  /** Create (or truncate) `path`. */
  static async create(path: string, bufferSize = DEFAULT_BUFFER): Promise<BufferedFile> {
    return new BufferedFile(await open(path, "w"), bufferSize);
  }

  /** Queue `parts` in order; resolves once they are copied (or written, when the buffer had to be flushed). */
  async write(...parts: Uint8Array[]): Promise<void> {
    if (this.#closed) throw new Error("capture file is closed; open a new writer to write more");
    for (const p of parts) {
      if (p.length > this.#buf.length - this.#used) {
        await this.flush();
        if (p.length > this.#buf.length) {
          await this.#fh.write(p);
          continue;
        }
      }
      this.#buf.set(p, this.#used);
      this.#used += p.length;
    }
  }

  async flush(): Promise<void> {
    let at = 0;
    while (at < this.#used) {
      const { bytesWritten } = await this.#fh.write(this.#buf, at, this.#used - at);
      at += bytesWritten;
    }
    this.#used = 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      await this.#fh.close();
    }
  }
}
