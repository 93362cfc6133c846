/**
 * SeaweedFS (`weed mini`) as a strict local S3 for the AWS-fidelity tests. moto accepts any
 * presigned URL: it checks neither the signature nor the expiry, and ignores what the URL signs
 * about the body. SeaweedFS (measured with @aws-sdk/client-s3 3.1175 presigned URLs):
 * - verifies SigV4 against the secret of the one identity in its s3.json: a changed signature, key,
 *   signed or added query parameter, method or secret gives 403 SignatureDoesNotMatch, an unknown
 *   access key 403 InvalidAccessKeyId, an unsigned request 403 AccessDenied;
 * - refuses an expired URL (403 AccessDenied, "Request has expired");
 * - holds the body to a signed Content-Length (N+1 or N-1 bytes: 403 SignatureDoesNotMatch);
 * - checks x-amz-checksum-* values against the body, also from the query string of a presigned URL
 *   (400 BadDigest; nothing is stored). The SDK's default requestChecksumCalculation (WHEN_SUPPORTED)
 *   presigns x-amz-checksum-crc32=AAAAAA== (the CRC32 of an empty body), so such a URL refuses any
 *   non-empty upload here, as in AWS; presign with WHEN_REQUIRED;
 * - enforces bucket policies: the deny-non-TLS statement CDK's enforceSSL writes locks every plain
 *   HTTP request out of the bucket (403 AccessDenied), so local provisioning must not put it.
 * It does not check the signing region, and has no bucket notifications
 * (PutBucketNotificationConfiguration answers 501 NotImplemented) and no SQS: use LocalStack
 * (localstack-emulator.ts) for S3 -> SQS events.
 *
 * The `weed` binary is built from the Go module proxy on first use (pinned version; 6 to 10 minutes
 * and 2.6 GB of memory) and cached outside the clone, keyed by version, so every clone and worktree
 * on the machine shares one build. Each start gets its own loopback ports and a temporary data folder
 * that is removed when it stops or its parent dies (see tethered-child.ts).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { freePorts, spawnTethered, type TetheredChild } from './tethered-child.ts';

export const SEAWEEDFS_VERSION = 'v0.0.0-20261109003541-7506e5f91cd6';
const seaweedfsModule = 'github.com/seaweedfs/seaweedfs';
const region = 'us-east-1';

export interface Seaweedfs {
  /** http://127.0.0.1:<port>; use it with forcePathStyle: true. */
  endpoint: string;
  region: string;
  /** The only identity SeaweedFS accepts (anonymous requests are refused). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

/** `${XDG_CACHE_HOME or ~/.cache}/credit-predictions/seaweedfs/<version>/weed` */
export function seaweedfsBinaryPath(): string {
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cacheHome, 'credit-predictions', 'seaweedfs', SEAWEEDFS_VERSION, 'weed');
}

/**
 * Builds the pinned `weed` once per machine; later calls return its path at once. A caller that
 * finds another process building (the lock file) waits for that build instead of starting a second.
 * The binary is linked under a temporary name and renamed into place only after it runs, so a
 * killed build never leaves a half-written `weed` behind.
 */
export async function ensureSeaweedfsInstalled(log: (line: string) => void = () => {}): Promise<string> {
  const binary = seaweedfsBinaryPath();
  if (existsSync(binary)) return binary;
  const folder = dirname(binary);
  await mkdir(folder, { recursive: true });
  const lock = join(folder, 'build.lock');
  let waiting = false;
  while (!(await takeLock(lock))) {
    if (existsSync(binary)) return binary;
    if (!waiting) log(`Waiting for another process that is building SeaweedFS (${lock}).`);
    waiting = true;
    await sleep(2000);
  }
  try {
    if (existsSync(binary)) return binary;
    await build(folder, binary, log);
    return binary;
  } finally {
    await rm(lock, { force: true });
  }
}

/** Creates the lock file with this process's id; a lock whose process is gone is taken over. */
async function takeLock(lock: string): Promise<boolean> {
  try {
    const handle = await open(lock, 'wx');
    await handle.writeFile(String(process.pid));
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const owner = Number.parseInt(await readFile(lock, 'utf8').catch(() => ''), 10);
  if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) return false;
  // The builder died, or has not written its id yet (then the lock is a few milliseconds old). Two
  // callers that take over the same stale lock at once may both build; the rename keeps that safe.
  const age = Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? 0);
  if (Number.isInteger(owner) || age > 10_000) await rm(lock, { force: true });
  return false;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function build(folder: string, binary: string, log: (line: string) => void): Promise<void> {
  try {
    await run('go', ['version'], folder);
  } catch {
    throw new Error(
      'Building the SeaweedFS emulator needs Go (https://go.dev/dl/) on the PATH: `go` was not found.',
    );
  }
  // Leftovers of builds whose process was killed.
  for (const name of await readdir(folder)) {
    if (name.startsWith('weed.building-')) await rm(join(folder, name), { force: true });
  }
  log(
    `Building SeaweedFS ${SEAWEEDFS_VERSION} into ${folder}: about 6 to 10 minutes and 2.6 GB of memory, ` +
      'once per machine.',
  );
  // `go install` refuses this module (its go.mod has replace directives), so build it in place.
  const download = await run(
    'go',
    ['mod', 'download', '-json', `${seaweedfsModule}@${SEAWEEDFS_VERSION}`],
    folder,
  );
  const source = (JSON.parse(download) as { Dir?: string; Error?: string }).Dir;
  if (!source) throw new Error(`go mod download gave no module folder:\n${download}`);
  const temporary = join(folder, `weed.building-${process.pid}`);
  const started = Date.now();
  const progress = setInterval(
    () => log(`Still building SeaweedFS (${Math.round((Date.now() - started) / 60_000)} min).`),
    60_000,
  );
  try {
    await run('go', ['build', '-o', temporary, './weed'], source);
    await run(temporary, ['version'], folder);
    await chmod(temporary, 0o755);
    await rename(temporary, binary);
  } finally {
    clearInterval(progress);
    await rm(temporary, { force: true });
  }
  log(`Built SeaweedFS in ${Math.round((Date.now() - started) / 1000)} s: ${binary}`);
}

/** Runs a command and resolves with its stdout; rejects with its output. */
function run(program: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(program, args, {
      cwd,
      // GOWORK=off: a go.work file above the cache must not change what is built.
      env: { ...process.env, GOWORK: 'off', GO111MODULE: 'on' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-16_384);
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolveRun(stdout);
      else {
        const what = [program, ...args].join(' ');
        reject(new Error(`\`${what}\` failed (${signal ?? `exit code ${code}`}):\n${stderr}${stdout}`));
      }
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `weed mini` on free loopback ports with a fresh data folder (removed by stop()) and
 * resolves once a signed ListBuckets succeeds. WebDAV, the Iceberg and Lance catalogs, telemetry
 * and metrics are off; the admin server mini always runs gets loopback ports of its own too. It does
 * not keep Node's event loop alive, and stops when this process exits, however it exits.
 */
export async function startSeaweedfs(options: { log?: (line: string) => void } = {}): Promise<Seaweedfs> {
  const binary = await ensureSeaweedfsInstalled(options.log);
  // Ports are free when chosen but are not held; another process can take one first. Retry then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binary);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof PortTakenError)) throw error;
      options.log?.(`SeaweedFS could not bind a port (${error.message.split('\n')[0]}); retrying.`);
    }
  }
}

class PortTakenError extends Error {}

async function startOnce(binary: string): Promise<Seaweedfs> {
  const folder = await mkdtemp(join(tmpdir(), 'seaweedfs-'));
  const data = join(folder, 'data');
  const temporary = join(folder, 'tmp');
  await mkdir(data);
  await mkdir(temporary);
  const credentials = {
    accessKeyId: `AKSW${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  };
  const identities = {
    identities: [
      {
        name: 'local-admin',
        credentials: [{ accessKey: credentials.accessKeyId, secretKey: credentials.secretAccessKey }],
        actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
      },
    ],
  };
  const s3Config = join(folder, 's3.json');
  await writeFile(s3Config, JSON.stringify(identities, null, 2), { mode: 0o600 });

  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc, admin, adminGrpc] =
    await freePorts(10);
  const args = [
    `-logdir=${folder}`,
    'mini',
    `-dir=${data}`,
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    '-master.telemetry=false',
    // mini sizes volumes from the disk (up to 1 GB each); tests need little.
    '-master.volumeSizeLimitMB=64',
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-filer.localSocket=${join(folder, 'filer.sock')}`,
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    `-s3.localSocket=${join(folder, 's3.sock')}`,
    `-s3.config=${s3Config}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    '-webdav=false',
    '-admin.ui=false',
    `-admin.port=${admin}`,
    `-admin.port.grpc=${adminGrpc}`,
    '-admin.port.legacy=0',
    `-admin.dataDir=${join(folder, 'admin')}`,
  ];
  // mini also opens gRPC unix sockets at fixed /tmp paths named after the gRPC ports.
  const sockets = [
    `/tmp/seaweedfs-master-grpc-${masterGrpc}.sock`,
    `/tmp/seaweedfs-volume-grpc-${volumeGrpc}.sock`,
    `/tmp/seaweedfs-filer-grpc-${filerGrpc}.sock`,
    `/tmp/seaweedfs-s3-grpc-${s3Grpc}.sock`,
    `/tmp/seaweedfs-admin-grpc-${adminGrpc}.sock`,
  ];
  const child = spawnTethered(binary, args, {
    cwd: folder,
    // TMPDIR: anything weed puts in os.TempDir() lands in the data folder and goes with it.
    env: { ...process.env, TMPDIR: temporary },
    removeAfterExit: [folder, ...sockets],
  });
  const stop = async () => {
    await child.stop();
    await rm(folder, { recursive: true, force: true });
    await Promise.all(sockets.map((socket) => rm(socket, { force: true })));
  };
  const endpoint = `http://127.0.0.1:${s3}`;
  try {
    await waitForS3(endpoint, credentials, child);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, region, credentials, stop };
}

async function waitForS3(
  endpoint: string,
  credentials: Seaweedfs['credentials'],
  child: TetheredChild,
): Promise<void> {
  const client = new S3Client({ endpoint, region, credentials, forcePathStyle: true, maxAttempts: 1 });
  const deadline = Date.now() + 60_000;
  let lastError: unknown;
  try {
    while (Date.now() < deadline) {
      if (child.exited()) {
        const output = child.output();
        const message = `SeaweedFS exited with code ${child.process.exitCode}:\n${output}`;
        if (/address already in use|is not available on/i.test(output)) throw new PortTakenError(message);
        throw new Error(message);
      }
      try {
        await client.send(new ListBucketsCommand({}));
        return;
      } catch (error) {
        lastError = error;
      }
      await sleep(100);
    }
  } finally {
    client.destroy();
  }
  throw new Error(
    `SeaweedFS did not answer a signed ListBuckets on ${endpoint} within 60 s (${String(lastError)}):\n` +
      child.output(),
  );
}
