/** `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` → an SDK sampler (default parentbased_always_on). */
import type { Sampler } from '@opentelemetry/sdk-trace-base';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';

export const SAMPLER_NAMES = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

export class SamplerConfigError extends Error {}

function ratio(arg: string | undefined): number {
  if (arg === undefined || arg.trim() === '') return 1;
  const r = Number(arg);
  if (!Number.isFinite(r) || r < 0 || r > 1) {
    throw new SamplerConfigError(`OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1, got "${arg}"`);
  }
  return r;
}

/** The samplers built here: none reads a span's attributes, so the span factory need not build them. */
const attributeBlind = new WeakSet<Sampler>();

/**
 * Whether the sampler is known not to read attributes: built here, or one of the SDK's leaf samplers as such (a
 * subclass may read them; a parent-based one built elsewhere may delegate to one that does).
 */
export function ignoresAttributes(sampler: Sampler): boolean {
  const c = sampler.constructor;
  return (
    c === AlwaysOnSampler ||
    c === AlwaysOffSampler ||
    c === TraceIdRatioBasedSampler ||
    attributeBlind.has(sampler)
  );
}

export function samplerFrom(name: string | undefined, arg: string | undefined): Sampler {
  const sampler = configuredSampler(name, arg);
  attributeBlind.add(sampler);
  return sampler;
}

function configuredSampler(name: string | undefined, arg: string | undefined): Sampler {
  switch ((name ?? 'parentbased_always_on').trim().toLowerCase()) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio(arg));
    case '':
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio(arg)) });
    default:
      throw new SamplerConfigError(
        `OTEL_TRACES_SAMPLER="${name}" is not supported; use one of ${SAMPLER_NAMES.join(', ')}`,
      );
  }
}
