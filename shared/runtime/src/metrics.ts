/**
 * Prometheus metrics: one registry per service, Node's default process metrics in it
 * under `ovntap_`, and typed factories that register into it with the same prefix.
 *
 *   const metrics = createMetrics();
 *   const requests = metrics.counter({
 *     name: "intake_requests_total", help: "Mirror requests by outcome", labelNames: ["outcome"],
 *   });
 *   requests.inc({ outcome: "accepted" });      // ovntap_intake_requests_total{outcome="accepted"}
 *   await startHttpServer({ ..., registry: metrics.registry });
 */
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
} from "prom-client";

export const METRICS_PREFIX = "ovntap_";

export interface MetricsOptions {
  /** Prefix of every metric name; default "ovntap_". */
  prefix?: string;
  /** Collect Node's default process metrics (CPU, memory, event loop lag, GC); default true. */
  defaultMetrics?: boolean;
  /** Labels added to every sample (e.g. `{ node }`). */
  defaultLabels?: Record<string, string>;
}

/** Configuration of a metric without `registers`: the factory registers it. `name` is given without the prefix. */
type Config<C> = Omit<C, "registers">;

export interface Metrics {
  readonly registry: Registry;
  readonly prefix: string;
  counter<L extends string = never>(config: Config<CounterConfiguration<L>>): Counter<L>;
  gauge<L extends string = never>(config: Config<GaugeConfiguration<L>>): Gauge<L>;
  histogram<L extends string = never>(config: Config<HistogramConfiguration<L>>): Histogram<L>;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const prefix = opts.prefix ?? METRICS_PREFIX;
  const registry = new Registry();
  if (opts.defaultLabels) registry.setDefaultLabels(opts.defaultLabels);
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix });
  return {
    registry,
    prefix,
    counter: (config) => new Counter({ ...config, name: prefix + config.name, registers: [registry] }),
    gauge: (config) => new Gauge({ ...config, name: prefix + config.name, registers: [registry] }),
    histogram: (config) => new Histogram({ ...config, name: prefix + config.name, registers: [registry] }),
  };
}
