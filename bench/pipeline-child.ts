/**
 * Runs the pipeline section in a process of its own, so its peak RSS is the pipeline's (plus the input it reads):
 * argv = the input file. Prints one JSON line. Besides the floor and the whole pipeline, the stage ladder runs the
 * same bytes through ever more of it (decode; + correlate; + map to spans) to show where its time goes, and the
 * whole pipeline again with the RED metrics recorded, for their cost.
 *
 * Every rung runs once over the whole input to warm up (a first pass is up to 2× slower while V8 compiles and the
 * heap grows), then three times; the fastest counts, since noise on a shared machine only ever adds time.
 */
import { readFileSync } from 'node:fs';
import { DiscardExporter } from '../src/export/discard-exporter.js';
import type { PipelineRun } from './pipeline.js';
import { decodeSeconds, floorEventsPerSecond, runPipeline } from './pipeline.js';

const input = readFileSync(process.argv[2]!);
const ROUNDS = 4;
const best = {
  floor: Infinity,
  decode: Infinity,
  correlate: Infinity,
  map: Infinity,
  pipeline: Infinity,
  metrics: Infinity,
};
let run: PipelineRun | undefined;
let maxRssMb = 0;
for (let round = 0; round < ROUNDS; round++) {
  const measured = round > 0;
  const keep = (rung: keyof typeof best, seconds: number): void => {
    if (measured) best[rung] = Math.min(best[rung], seconds);
  };
  keep('floor', floorEventsPerSecond(input).seconds);
  const full = await runPipeline(input);
  if (measured && full.seconds < best.pipeline) run = full;
  keep('pipeline', full.seconds);
  // The whole pipeline's peak, before the ladder's partial runs.
  if (round === 0) maxRssMb = process.resourceUsage().maxRSS / 1024;
  keep('decode', decodeSeconds(input));
  keep('correlate', (await runPipeline(input, new DiscardExporter(), 'correlate')).seconds);
  keep('map', (await runPipeline(input, new DiscardExporter())).seconds);
  keep('metrics', (await runPipeline(input, undefined, 'export', { metrics: true })).seconds);
}
process.stdout.write(
  JSON.stringify({
    events: run!.events,
    floorSeconds: best.floor,
    pipelineSeconds: best.pipeline,
    spans: run!.spans,
    otlpBytes: run!.otlpBytes,
    serializeSeconds: run!.serializeSeconds,
    dropped: run!.dropped,
    unusedHeaders: run!.unusedHeaders,
    unusedEvents: run!.unusedEvents,
    ladderSeconds: { decode: best.decode, correlate: best.correlate, map: best.map },
    metricsSeconds: best.metrics,
    maxRssMb,
    inputMb: input.length / 1048576,
  }) + '\n',
);
