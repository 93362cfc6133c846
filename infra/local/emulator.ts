/**
 * The embedded AWS emulator: moto in server mode, installed into a project-local Python virtual
 * environment on first use (pinned version) and started through a launcher that serialises DynamoDB
 * requests (see moto_server.py). Used when AWS_ENDPOINT_URL is not set.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const repositoryRoot = resolve(here, '..', '..');
const venv = join(repositoryRoot, '.cache', 'emulator-venv');
const requirements = join(here, 'emulator-requirements.txt');
const launcher = join(here, 'moto_server.py');
const python = join(venv, 'bin', 'python');

export interface Emulator {
  endpoint: string;
  stop(): Promise<void>;
}

/** Creates the virtual environment and installs the pinned moto once; later calls return at once. */
export async function ensureEmulatorInstalled(log: (line: string) => void = () => {}): Promise<void> {
  const wanted = await readFile(requirements, 'utf8');
  const stamp = join(venv, '.installed-requirements');
  if (existsSync(python) && existsSync(stamp) && (await readFile(stamp, 'utf8')) === wanted) return;
  log(`Installing the local AWS emulator (${wanted.trim()}) into ${venv}; this happens once.`);
  await mkdir(dirname(venv), { recursive: true });
  const systemPython = await findPython();
  if (!existsSync(python)) await run(systemPython, ['-m', 'venv', venv]);
  await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirements], {
    maxBuffer: 16 * 1024 * 1024,
  });
  await writeFile(stamp, wanted);
}

async function findPython(): Promise<string> {
  for (const candidate of ['python3', 'python']) {
    try {
      await run(candidate, ['--version']);
      return candidate;
    } catch {
      // try the next name
    }
  }
  throw new Error('The local AWS emulator needs Python 3 (python3) on the PATH to install moto.');
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

async function waitUntilUp(
  endpoint: string,
  instance: string,
  child: ChildProcess,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`The local AWS emulator exited with code ${child.exitCode}:\n${output()}`);
    }
    try {
      const response = await fetch(`${endpoint}/_emulator/instance`);
      // Another emulator that took the port first answers too, with another instance id.
      if (response.ok && (await response.text()) === instance) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`The local AWS emulator did not answer on ${endpoint} within 30 s:\n${output()}`);
}

export async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once('error', () => resolvePort(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(false)));
  });
}

/** Starts moto on the given port (a free one if omitted) and resolves once it answers. */
export async function startEmulator(
  options: { port?: number; log?: (line: string) => void } = {},
): Promise<Emulator> {
  await ensureEmulatorInstalled(options.log);
  if (options.port && (await portInUse(options.port))) {
    throw new Error(
      `Port ${options.port} is already in use, so the local AWS emulator cannot start there. Is another ` +
        '`npm run dev` running? Stop it, or set EMULATOR_PORT (or AWS_ENDPOINT_URL to use a running emulator).',
    );
  }
  const port = options.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;
  const instance = randomUUID();
  const child = spawn(
    python,
    [launcher, '--host', '127.0.0.1', '--port', String(port), '--instance', instance],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    // Keep only the tail: moto logs every request.
    output = (output + chunk.toString()).slice(-8192);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await waitUntilUp(endpoint, instance, child, () => output);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    endpoint,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}
