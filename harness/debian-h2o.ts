// A real H2O for the tests: Debian's own source package built by scripts/debian-h2o.sh (cached outside the clone).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** At run time this file is dist/harness/debian-h2o.js, two levels below the repository root. */
const script = join(fileURLToPath(new URL('../..', import.meta.url)), 'scripts', 'debian-h2o.sh');
const LOG_TAIL_LINES = 40;

let built: Promise<string> | undefined;

/**
 * The path of H2O built from Debian's source package: seconds on the first call on a machine, at once after. A failed
 * build rejects with the build log's tail, so a test fails with the reason rather than skipping.
 */
export function buildDebianH2o(): Promise<string> {
  built ??= new Promise((resolve, reject) => {
    execFile('sh', [script], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const path = stdout.trim().split('\n').pop() ?? '';
      if (err === null && path !== '') return resolve(path);
      const tail = stderr.trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
      reject(
        new Error(
          `${script} failed (${err ? `exit ${String(err.code)}` : 'no path printed'}); build log's tail:\n${tail}`,
        ),
      );
    });
  });
  return built;
}
