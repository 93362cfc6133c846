/**
 * LocalStack without Docker, for the AWS-fidelity tests: its Python runtime in host mode with S3 and
 * SQS only, installed into a project-local virtual environment (.cache/localstack-venv, pins in
 * localstack/requirements.txt) on first use. Not to be confused with local-stack.ts, the whole
 * service on one machine.
 *
 * What it adds over moto: S3 bucket notifications are delivered to SQS (ObjectCreated records shaped
 * like AWS's, prefix/suffix filters applied, a TestEvent on configuration; a notification to a queue
 * that does not exist is refused), bucket names are validated, and presigned URLs are checked
 * (S3_SKIP_SIGNATURE_VALIDATION=0): the signature over method, key, signed query parameters and
 * signed headers such as Content-Length, and the expiry. LocalStack knows no secrets, so it checks
 * every signature against the secret "test", hence the credentials this returns. What it does not
 * check: x-amz-checksum-* values of presigned PUTs (a wrong CRC32 or SHA-256 is stored as sent),
 * unsigned extra query parameters, anonymous (unsigned) requests, the signing region, bucket
 * policies (a deny-non-TLS policy is stored, not enforced), IAM (not running), or that a queue policy
 * lets S3 send (AWS refuses the notification configuration without one). SeaweedFS (seaweedfs.ts) is
 * the stricter S3; LocalStack is the one with S3 -> SQS events.
 *
 * Each start gets a free port, listens on 127.0.0.1 only (see localstack_server.py), keeps every
 * folder LocalStack writes (its FILESYSTEM_ROOT, S3 object bodies, Python's temporary files, the
 * config folder it would otherwise read profiles from in ~/.localstack) in one temporary folder that
 * is removed when it stops or its parent dies, sends no analytics, runs no DNS server (it would bind
 * port 53 and query public resolvers), and points every outbound proxy at a closed loopback port so
 * nothing it tries (the AWS catalog download, for one) leaves the machine.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePorts, spawnTethered, type TetheredChild } from './tethered-child.ts';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const repositoryRoot = resolve(here, '..', '..');
const venv = join(repositoryRoot, '.cache', 'localstack-venv');
const requirements = join(repositoryRoot, 'localstack', 'requirements.txt');
const launcher = join(here, 'localstack_server.py');
const python = join(venv, 'bin', 'python');
/** LocalStack 2026.3 imports `warnings.deprecated`, new in Python 3.13 (3.12 fails at start). */
const minimumPython: [number, number] = [3, 13];
const region = 'us-east-1';
/** Nothing listens on port 1 (tcpmux); an outbound request through this proxy fails at once. */
const closedProxy = 'http://127.0.0.1:1';

export interface LocalstackEmulator {
  /** http://127.0.0.1:<port>; S3 clients need forcePathStyle: true. */
  endpoint: string;
  region: string;
  /** What presigned URLs must be signed with (any access key works for other requests). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

/** Creates the virtual environment and installs the pinned LocalStack once; later calls return at once. */
export async function ensureLocalstackInstalled(log: (line: string) => void = () => {}): Promise<void> {
  const wanted = await readFile(requirements, 'utf8');
  const stamp = join(venv, '.installed-requirements');
  if (existsSync(python) && existsSync(stamp) && (await readFile(stamp, 'utf8')) === wanted) return;
  if (existsSync(python) && !(await pythonVersionAtLeast(python))) {
    log(`Removing ${venv}: it was made with a Python older than ${minimumPython.join('.')}.`);
    await rm(venv, { recursive: true, force: true });
  }
  const systemPython = existsSync(python) ? python : await findPython();
  log(`Installing LocalStack (${requirements}) into ${venv} with ${systemPython}; this happens once.`);
  await mkdir(dirname(venv), { recursive: true });
  if (!existsSync(python)) await run(systemPython, ['-m', 'venv', venv]);
  await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirements], {
    maxBuffer: 16 * 1024 * 1024,
  });
  await writeFile(stamp, wanted);
}

async function pythonVersionAtLeast(candidate: string): Promise<boolean> {
  try {
    const { stdout } = await run(candidate, ['-c', 'import sys; print(*sys.version_info[:2])']);
    const [major = 0, minor = 0] = stdout.trim().split(' ').map(Number);
    return major > minimumPython[0] || (major === minimumPython[0] && minor >= minimumPython[1]);
  } catch {
    // not installed, or a pyenv shim for a version that is not selected
    return false;
  }
}

/** python3.14/python3.13/python3 on the PATH, then pyenv's versions (newest first). */
async function findPython(): Promise<string> {
  const candidates = ['python3.14', 'python3.13', 'python3'];
  let pyenvRoot = process.env.PYENV_ROOT || join(homedir(), '.pyenv');
  try {
    pyenvRoot = (await run('pyenv', ['root'])).stdout.trim() || pyenvRoot;
  } catch {
    // no pyenv on the PATH: try its default folder anyway
  }
  const versions = await readdir(join(pyenvRoot, 'versions')).catch(() => [] as string[]);
  const numbered = versions
    .filter((name) => /^3\.\d+\.\d+$/.test(name))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  candidates.push(...numbered.map((name) => join(pyenvRoot, 'versions', name, 'bin', 'python3')));
  for (const candidate of candidates) {
    if (await pythonVersionAtLeast(candidate)) return candidate;
  }
  throw new Error(
    `LocalStack needs Python >= ${minimumPython.join('.')} to install (python3.13 on the PATH, or ` +
      `\`pyenv install 3.13\`); none was found among: ${candidates.join(', ')}.`,
  );
}

/**
 * Starts LocalStack (S3 and SQS) on a free loopback port and resolves once its health endpoint
 * reports both services available. SQS queue URLs are http://127.0.0.1:<port>/queue/us-east-1/
 * 000000000000/<name> (the endpoint's own host and port, whichever protocol the SDK speaks). It does
 * not keep Node's event loop alive, and stops when this process exits, however it exits.
 */
export async function startLocalstackEmulator(
  options: { log?: (line: string) => void } = {},
): Promise<LocalstackEmulator> {
  await ensureLocalstackInstalled(options.log);
  // The port is free when chosen but not held; another process can take it first. Retry then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce();
    } catch (error) {
      if (attempt >= 3 || !(error instanceof PortTakenError)) throw error;
      options.log?.('LocalStack could not bind its port; retrying on another.');
    }
  }
}

class PortTakenError extends Error {}

async function startOnce(): Promise<LocalstackEmulator> {
  const [port] = await freePorts(1);
  if (!port) throw new Error('no free port');
  const folder = await mkdtemp(join(tmpdir(), 'localstack-'));
  const temporary = join(folder, 'tmp');
  await mkdir(temporary);
  const endpoint = `http://127.0.0.1:${port}`;
  const inherited = { ...process.env };
  // TMPDIR is a deprecated LocalStack setting of its own (it warns); TEMP moves Python's tempfile.
  for (const name of ['TMPDIR', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy', 'LOCALSTACK_AUTH_TOKEN']) {
    delete inherited[name];
  }
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    GATEWAY_LISTEN: `127.0.0.1:${port}`,
    LOCALSTACK_HOST: `127.0.0.1:${port}`,
    SERVICES: 's3,sqs',
    // This runs on the host even inside a container (LocalStack would then use /var/lib/localstack).
    OVERRIDE_IN_DOCKER: '0',
    FILESYSTEM_ROOT: join(folder, 'filesystem'),
    CONFIG_DIR: join(folder, 'config'),
    TEMP: temporary,
    // plux's entry-point index: kept with the virtual environment, not in ~/.cache.
    XDG_CACHE_HOME: join(venv, '.cache'),
    DISABLE_EVENTS: '1',
    DNS_ADDRESS: '0',
    SKIP_SSL_CERT_DOWNLOAD: '1',
    SKIP_INFRA_DOWNLOADS: '1',
    OUTBOUND_HTTP_PROXY: closedProxy,
    OUTBOUND_HTTPS_PROXY: closedProxy,
    HTTP_PROXY: closedProxy,
    HTTPS_PROXY: closedProxy,
    http_proxy: closedProxy,
    https_proxy: closedProxy,
    SQS_ENDPOINT_STRATEGY: 'path',
    S3_SKIP_SIGNATURE_VALIDATION: '0',
    PERSISTENCE: '0',
  };
  const child = spawnTethered(python, [launcher, '--s3-storage-dir', join(folder, 's3-storage')], {
    env,
    cwd: folder,
    removeAfterExit: [folder],
  });
  const stop = async (graceMs?: number) => {
    await child.stop(graceMs);
    await rm(folder, { recursive: true, force: true });
  };
  try {
    await waitUntilHealthy(endpoint, child);
  } catch (error) {
    // A LocalStack that never got going may not finish a graceful shutdown either.
    await stop(2000);
    throw error;
  }
  return {
    endpoint,
    region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    stop: () => stop(),
  };
}

async function waitUntilHealthy(endpoint: string, child: TetheredChild): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    // LocalStack goes on without a gateway when its port is taken: "Couldn't listen on ...".
    if (/CannotListenError/.test(child.output())) {
      throw new PortTakenError(`LocalStack could not listen on ${endpoint}:\n${child.output()}`);
    }
    if (child.exited()) {
      throw new Error(`LocalStack exited with code ${child.process.exitCode}:\n${child.output()}`);
    }
    try {
      const response = await fetch(`${endpoint}/_localstack/health`);
      last = await response.text();
      const { services = {} } = JSON.parse(last) as { services?: Record<string, string> };
      const ready = (state: string | undefined) => state === 'available' || state === 'running';
      if (response.ok && ready(services.s3) && ready(services.sqs)) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`LocalStack was not healthy on ${endpoint} within 60 s (${last}):\n${child.output()}`);
}
