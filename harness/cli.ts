// Runs the real h2o-otel CLI (the compiled dist/src/cli/main.js) as a child process.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** This file compiles to dist/harness/, two levels below the repository root. */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliPath = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
export const fixture = (name: string): string => join(repoRoot, 'test', 'fixtures', 'h2olog', name);

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcess;
  result: Promise<CliResult>;
  stderrSoFar(): string;
}

/** Environment without inherited OTEL_* and H2O_OTEL_* variables, so a developer's shell cannot change what tests see. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('OTEL_') && !k.startsWith('H2O_OTEL_')) env[k] = v;
  return { ...env, ...extra };
}

/**
 * `stdin`: its bytes, then end of input; 'open' leaves it open for the test to write to (`child.stdin`).
 * `wrapper` runs the CLI under another command, e.g. `setpriv` to drop capabilities.
 */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
  stdin?: Buffer | 'open',
  wrapper: string[] = [],
): RunningCli {
  const argv = [...wrapper, process.execPath, cliPath, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { env: cleanEnv(env), stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  if (stdin === undefined) child.stdin.end();
  else if (stdin !== 'open') child.stdin.end(stdin);
  const result = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, result, stderrSoFar: () => stderr };
}

export function runCli(
  args: string[],
  env: Record<string, string> = {},
  stdin?: Buffer,
  wrapper: string[] = [],
): Promise<CliResult> {
  return startCli(args, env, stdin, wrapper).result;
}

/** Start the CLI on a USDT target (`args` include `--pid` or `--binary`) and resolve once its probes are attached. */
export async function startAttachedCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<RunningCli> {
  const cli = startCli(['--status-interval', '0', ...args], env);
  const deadline = Date.now() + 20_000;
  while (!/attached \d+ (probes|uprobe)/.test(cli.stderrSoFar())) {
    if (Date.now() > deadline || cli.child.exitCode !== null)
      throw new Error(`h2o-otel did not attach:\n${cli.stderrSoFar()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return cli;
}
