/**
 * The AWS-fidelity tests' emulators from the command line: `install` builds SeaweedFS and installs
 * LocalStack ahead of time (CI caches, or a first run that should not spend ten minutes inside a
 * test's timeout); `start` runs both until Ctrl+C and prints how to reach them, for poking by hand.
 *
 *   tsx infra/local/fidelity-emulators-cli.ts install [seaweedfs|localstack]
 *   tsx infra/local/fidelity-emulators-cli.ts start [seaweedfs|localstack]
 */
import { ensureLocalstackInstalled, startLocalstackEmulator } from './localstack-emulator.ts';
import { ensureSeaweedfsInstalled, startSeaweedfs } from './seaweedfs.ts';

const [command, only] = process.argv.slice(2);
const log = (line: string) => console.log(line);
const wanted = (name: 'seaweedfs' | 'localstack') => !only || only === name;

if ((command !== 'install' && command !== 'start') || (only && !['seaweedfs', 'localstack'].includes(only))) {
  console.error('usage: fidelity-emulators-cli.ts install|start [seaweedfs|localstack]');
  process.exit(2);
}

if (command === 'install') {
  // One after the other: the SeaweedFS build alone takes 2.6 GB of memory.
  if (wanted('seaweedfs')) log(`SeaweedFS: ${await ensureSeaweedfsInstalled(log)}`);
  if (wanted('localstack')) {
    await ensureLocalstackInstalled(log);
    log('LocalStack is installed.');
  }
} else {
  const running: { stop(): Promise<void> }[] = [];
  if (wanted('seaweedfs')) {
    const seaweedfs = await startSeaweedfs({ log });
    running.push(seaweedfs);
    log(
      `SeaweedFS S3: ${seaweedfs.endpoint} (path-style, region ${seaweedfs.region}) ` +
        `AWS_ACCESS_KEY_ID=${seaweedfs.credentials.accessKeyId} ` +
        `AWS_SECRET_ACCESS_KEY=${seaweedfs.credentials.secretAccessKey}`,
    );
  }
  if (wanted('localstack')) {
    const localstack = await startLocalstackEmulator({ log });
    running.push(localstack);
    log(`LocalStack S3 and SQS: ${localstack.endpoint} (region ${localstack.region}, credentials test/test)`);
  }
  log('Press Ctrl+C to stop.');
  const keepAlive = setInterval(() => {}, 60_000);
  const stop = async () => {
    clearInterval(keepAlive);
    await Promise.all(running.map((emulator) => emulator.stop()));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
