/** h2o-otel's version, from its package.json (two levels above this file once compiled to dist/src/). */
import { createRequire } from 'node:module';

export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string })
  .version;
