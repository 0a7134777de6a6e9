/**
 * Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` lines, then one
 * `name{label="value"} number` line per sample. Only what the tswg metrics need.
 */

export type MetricType = "counter" | "gauge";

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/u;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/u;

function escapeLabel(v: string): string {
  return v.replace(/\\/gu, "\\\\").replace(/"/gu, '\\"').replace(/\n/gu, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/gu, "\\\\").replace(/\n/gu, "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** The exposition text of `families`; families without samples are left out. */
export function formatExposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (!NAME.test(f.name)) throw new Error(`invalid metric name ${JSON.stringify(f.name)}`);
    if (f.samples.length === 0) continue;
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => {
        if (!LABEL.test(k) || k.startsWith("__")) throw new Error(`invalid label name ${JSON.stringify(k)}`);
        return `${k}="${escapeLabel(v)}"`;
      });
      out.push(`${f.name}${labels.length > 0 ? `{${labels.join(",")}}` : ""} ${formatValue(s.value)}`);
    }
  }
  return out.join("\n") + (out.length > 0 ? "\n" : "");
}

/** Collects samples into families by name, keeping first-seen order. */
export class FamilySet {
  private readonly byName = new Map<string, MetricFamily>();

  add(name: string, type: MetricType, help: string, labels: Record<string, string>, value: number): void {
    let f = this.byName.get(name);
    if (f === undefined) {
      f = { name, type, help, samples: [] };
      this.byName.set(name, f);
    }
    f.samples.push({ labels, value });
  }

  families(): MetricFamily[] {
    return [...this.byName.values()];
  }
}
