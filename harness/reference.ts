// The machine's ceiling (versions/ceiling.ts), run beside the chat versions as `--versions ceiling`:
// kept out of every ranking and of the evolution story, and used only as the yardstick each
// version is measured against in the same run.
import { fmt } from '../common/helpers.ts';
import { spread } from './repeats.ts';
import type { VersionResult } from './result.ts';

export const REFERENCE = 'ceiling';
/** The share of the ceiling v3 is held to, at 1,000 and at 10,000 clients (docs/harness.md, "The machine's ceiling"). */
export const V3_CEILING_TARGET = 0.8;

export function isReference(r: Pick<VersionResult, 'label'>): boolean {
  return r.label.split(' ')[0] === REFERENCE;
}

/** Each version as a fraction of the ceiling in this run, or null when the run has no ceiling. */
export function ceilingFractions(results: readonly VersionResult[]): { ceiling: VersionResult; fractions: Array<{ label: string; fraction: number; basis: string }> } | null {
  const ceiling = results.find(isReference);
  if (!ceiling) return null;
  const capacity = (r: VersionResult): number => r.capacity?.sustainedPerSecond ?? 0;
  const perCpu = (r: VersionResult): number => r.server?.deliveriesPerCpuSecond ?? 0;
  const fractions = results
    .filter((r) => !isReference(r))
    .flatMap((r) => {
      // Capacity: the rate sustained. Otherwise the offered load is the same for all: what it cost.
      if (ceiling.capacity && r.capacity) {
        const paired = pairedRatios(r, ceiling);
        if (paired) {
          const f = spread(paired.ratios);
          return [{ label: r.label, fraction: f.median, basis: `sustained ${fmt(paired.version)} of ${fmt(paired.ceiling)} deliveries/s, medians of ${paired.ratios.length} runs; run by run ${f.min.toFixed(2)}-${f.max.toFixed(2)}×` }];
        }
        return capacity(ceiling) > 0 ? [{ label: r.label, fraction: capacity(r) / capacity(ceiling), basis: `sustained ${fmt(capacity(r))} of ${fmt(capacity(ceiling))} deliveries/s` }] : [];
      }
      return perCpu(ceiling) > 0 && perCpu(r) > 0 ? [{ label: r.label, fraction: perCpu(r) / perCpu(ceiling), basis: `${fmt(perCpu(r))} of ${fmt(perCpu(ceiling))} deliveries per CPU-second` }] : [];
    });
  return { ceiling, fractions };
}

/**
 * Repeated ladders: each run's sustained rate over the ceiling's run of the same index (they ran
 * one after the other, so a slow minute of the machine falls on both), and the two medians.
 */
function pairedRatios(r: VersionResult, ceiling: VersionResult): { ratios: number[]; version: number; ceiling: number } | null {
  const mine = r.repeats?.figures['delivered/s'];
  const theirs = ceiling.repeats?.figures['delivered/s'];
  const beside = theirs?.runs;
  if (!mine?.runs || !theirs || !beside || mine.runs.length !== beside.length) return null;
  const ratios = mine.runs.flatMap((v, i) => ((beside[i] as number) > 0 ? [v / (beside[i] as number)] : []));
  return ratios.length > 0 ? { ratios, version: mine.median, ceiling: theirs.median } : null;
}

export function ceilingLine(results: readonly VersionResult[]): string | null {
  const c = ceilingFractions(results);
  if (!c || c.fractions.length === 0) return null;
  return `Against this run's ceiling (the reference broadcaster, not a version): ${c.fractions.map((f) => `${f.label} ${f.fraction.toFixed(2)}× (${f.basis})`).join('; ')}`;
}
