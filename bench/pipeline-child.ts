/**
 * Runs the pipeline section in a process of its own, so its peak RSS is the pipeline's (plus the input it reads):
 * argv = the input file. Prints one JSON line.
 */
import { readFileSync } from 'node:fs';
import { floorEventsPerSecond, runPipeline } from './pipeline.js';

const input = readFileSync(process.argv[2]!);
const warm = input.subarray(0, input.indexOf(0x0a, Math.min(input.length - 1, 4 << 20)) + 1);
floorEventsPerSecond(warm);
await runPipeline(warm);
const floor = floorEventsPerSecond(input);
const run = await runPipeline(input);
process.stdout.write(
  JSON.stringify({
    events: floor.events,
    floorSeconds: floor.seconds,
    pipelineSeconds: run.seconds,
    decoded: run.events,
    spans: run.spans,
    otlpBytes: run.otlpBytes,
    serializeSeconds: run.serializeSeconds,
    dropped: run.dropped,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    inputMb: input.length / 1048576,
  }) + '\n',
);
