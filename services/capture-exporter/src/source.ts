/**
 * Where frames come from. A source pushes frames into a `FrameSink` (the pipeline) synchronously,
 * one call per frame; the sink copies what it keeps, so a source may reuse its buffer at once.
 *
 *     const source = new FileReplaySource({ path: "in.pcap" });
 *     const result = await source.run(pipeline);    // resolves when the file is done (or stop())
 */

export interface FrameSink {
  /** pcap link type of the frames (set by the source before the first frame). */
  linkType: number;
  ingest(b: Buffer, start: number, end: number, origLen: number, sec: number, nsec: number): void;
  /** False while the sink's queue is full: a lossless source waits (`whenWritable`), a live one drops. */
  writable(): boolean;
  whenWritable(): Promise<void>;
  /**
   * A buffer of `size` octets for the source to capture or read frames into, offered by the sink so
   * it can copy frames out of it cheaply (the pipeline's arena). Optional; ask once, before frames.
   */
  frameBuffer?(size: number): Buffer;
}

export interface SourceResult {
  /** Frames delivered to the sink and their captured bytes. */
  readonly frames: number;
  readonly bytes: number;
}

export interface CaptureSource {
  /** For logs: the interface or file. */
  readonly description: string;
  /** Delivers frames until the source ends (a file) or `stop()` (a live capture). */
  run(sink: FrameSink): Promise<SourceResult>;
  stop(): void;
}
