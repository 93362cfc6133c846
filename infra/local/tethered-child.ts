/**
 * Starts an emulator process that cannot outlive the Node process that started it, whatever way
 * that process ends (a test runner killed with SIGKILL included), for programs that have no
 * parent watch of their own (moto gets one from moto_server.py; SeaweedFS and LocalStack do not).
 *
 * The program runs under a small POSIX shell wrapper whose standard input is a pipe from this
 * process. The kernel closes that pipe when this process exits, however it exits; a watchdog in the
 * wrapper then sends the program SIGTERM. stop() uses the same path (it closes the pipe), so the
 * program always gets a graceful shutdown first, and the whole process group gets SIGKILL if it
 * has not exited within the grace period. The wrapper runs in its own process group, so a Ctrl+C in
 * the terminal reaches the program only through that path, after Node has had its say. Once the
 * program has exited, the wrapper removes the program's scratch files (`removeAfterExit`), so even
 * a killed parent leaves no state behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

// $1 is what to remove afterwards (paths, one a line); $2... is the program and its arguments. fd 3
// keeps the pipe from Node for the watchdog only: the program gets /dev/null as stdin so it never
// holds the pipe open itself. SIGKILL follows SIGTERM after 10 s: a program whose stdout went to the
// dead parent can hang in its shutdown (LocalStack's did until localstack_server.py caught it). When
// the program exits first, the watchdog is killed before it can signal a process id the kernel may
// have reused. The shell's own output goes to /dev/null once the program runs: its "Killed" notice
// on a pipe to a dead parent would kill it with SIGPIPE before it cleans up.
const wrapper = `remove_after_exit=$1
shift
exec 3<&0 </dev/null
"$@" 3<&- &
program=$!
( cat <&3 >/dev/null 2>&1; kill -TERM "$program"; sleep 10; kill -KILL "$program" ) >/dev/null 2>&1 &
watchdog=$!
exec 3<&- >/dev/null 2>&1
wait "$program"
status=$?
kill "$watchdog" 2>/dev/null
set -f
IFS='
'
for path in $remove_after_exit; do rm -rf -- "$path"; done
exit "$status"`;

export interface TetheredChild {
  /** The wrapper shell; its exit code is the program's. */
  readonly process: ChildProcess;
  /** The last 16 KiB of the program's stdout and stderr, for error messages. */
  output(): string;
  /** Whether the program has exited. */
  exited(): boolean;
  /** SIGTERM, then SIGKILL to the whole group after graceMs; resolves once the program has exited. */
  stop(graceMs?: number): Promise<void>;
}

export function spawnTethered(
  command: string,
  args: readonly string[],
  options: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    /** Files and folders the wrapper deletes (rm -rf) once the program has exited, however it exited. */
    removeAfterExit?: readonly string[];
    onOutput?: (chunk: string) => void;
  } = {},
): TetheredChild {
  const remove = options.removeAfterExit ?? [];
  if (remove.some((path) => path.includes('\n') || path === '')) throw new Error(`Cannot remove ${remove}`);
  const shellArgs = ['-c', wrapper, 'tethered-child', remove.join('\n'), command, ...args];
  const child = spawn('/bin/sh', shellArgs, {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
    env: options.env ?? process.env,
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-16_384);
    options.onOutput?.(text);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  // An EPIPE on a pipe the watchdog has stopped reading must not crash the parent.
  child.stdin?.on('error', () => {});
  let hasExited = false;
  const exit = new Promise<void>((resolveExit) =>
    child.once('exit', () => {
      hasExited = true;
      child.stdin?.destroy();
      resolveExit();
    }),
  );
  // Do not keep the event loop alive for the emulator: its owner decides when to stop it.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }
  return {
    process: child,
    output: () => output,
    exited: () => hasExited,
    async stop(graceMs = 10_000) {
      if (hasExited) return;
      child.stdin?.end();
      const timer = setTimeout(() => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/**
 * `count` distinct TCP ports free on 127.0.0.1 right now, all held open until every one is chosen.
 * They can still be taken by someone else before the emulator binds them: callers retry a start
 * that fails on a port in use.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolveServer, reject) => {
          const server = createServer();
          server.on('error', reject);
          server.listen(0, '127.0.0.1', () => resolveServer(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (!address || typeof address !== 'object') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((r) => server.close(r))));
  return ports;
}
