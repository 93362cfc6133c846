/**
 * Counts the AWS requests the functions send, per service and command, at the wire: the functions
 * run in child-process containers (infra/local/lambda-runtime.ts), so the bench cannot reach their
 * SDK clients, and instead puts this counting reverse proxy between them and the emulator. It
 * listens on two loopback ports that both forward every request, bodies streamed both ways:
 * - `endpoint`, which the containers are pointed at (AWS_ENDPOINT_URL_DYNAMODB/_S3/_SQS): its
 *   requests are counted while `start`ed, and timed from the request's arrival to the answer's
 *   last byte;
 * - `localEndpoint`, for this process's own clients (the stack's provisioning, the queue pump
 *   standing in for Lambda's SQS event source, the bench's S3 client): forwarded, never counted.
 * A request is classified by its X-Amz-Target (`DynamoDB_20120810.TransactWriteItems` →
 * `dynamodb:TransactWriteItems`, `AmazonSQS.ReceiveMessage` → `sqs:ReceiveMessage`); anything else
 * is S3, named by the SDK's `x-id` query parameter when it sends one, else by method and path
 * (best effort). Each HTTP request counts (an SDK retry counts again); a request to a presigned URL
 * (the bench's own upload PUT and results GET) never does.
 */
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export type AwsService = 'dynamodb' | 's3' | 'sqs';

/** Requests per `service:Command`. */
export type CallCounts = Record<string, number>;

/** Headers that belong to one connection, not to the request or answer being forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  // This server has already answered `100 Continue` itself (Node does unless told otherwise).
  'expect',
]);

/** `service:Command` of one request, or undefined for a presigned URL (not a function's SDK call). */
export function classify(method: string, url: string, headers: IncomingHttpHeaders): string | undefined {
  const target = headers['x-amz-target'];
  if (typeof target === 'string') {
    const [prefix = '', command = 'unknown'] = target.split('.', 2);
    if (prefix.startsWith('DynamoDB')) return `dynamodb:${command}`;
    if (prefix === 'AmazonSQS') return `sqs:${command}`;
    return `${prefix.toLowerCase()}:${command}`;
  }
  const parsed = new URL(url, 'http://proxy');
  const query = parsed.searchParams;
  if (query.has('X-Amz-Signature')) return undefined;
  // The SQS query protocol, should a client still speak it.
  const action = query.get('Action');
  if (action && /^\/(\d{12}\/[^/]+\/?)?$/.test(parsed.pathname)) return `sqs:${action}`;
  const xId = query.get('x-id');
  if (xId) return `s3:${xId}`;
  return `s3:${s3Command(method.toUpperCase(), parsed, headers)}`;
}

function s3Command(method: string, url: URL, headers: IncomingHttpHeaders): string {
  const query = url.searchParams;
  const [, bucket = '', ...keyParts] = url.pathname.split('/');
  const hasKey = keyParts.join('/') !== '';
  if (!bucket) return method === 'GET' ? 'ListBuckets' : `${method}Service`;
  if (!hasKey) {
    if (method === 'GET') {
      if (query.has('uploads')) return 'ListMultipartUploads';
      if (query.has('notification')) return 'GetBucketNotificationConfiguration';
      if (query.has('cors')) return 'GetBucketCors';
      if (query.has('location')) return 'GetBucketLocation';
      return query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
    }
    if (method === 'HEAD') return 'HeadBucket';
    if (method === 'PUT') {
      if (query.has('notification')) return 'PutBucketNotificationConfiguration';
      if (query.has('cors')) return 'PutBucketCors';
      if (query.has('lifecycle')) return 'PutBucketLifecycleConfiguration';
      return 'CreateBucket';
    }
    if (method === 'POST' && query.has('delete')) return 'DeleteObjects';
    if (method === 'DELETE') return 'DeleteBucket';
    return `${method}Bucket`;
  }
  const uploadId = query.has('uploadId');
  switch (method) {
    case 'GET':
      return uploadId ? 'ListParts' : 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'PUT':
      if (uploadId) return headers['x-amz-copy-source'] ? 'UploadPartCopy' : 'UploadPart';
      return headers['x-amz-copy-source'] ? 'CopyObject' : 'PutObject';
    case 'POST':
      if (query.has('uploads')) return 'CreateMultipartUpload';
      return uploadId ? 'CompleteMultipartUpload' : 'PostObject';
    case 'DELETE':
      return uploadId ? 'AbortMultipartUpload' : 'DeleteObject';
    default:
      return `${method}Object`;
  }
}

function forwardedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

export class AwsCallCounter {
  private counts = new Map<string, number>();
  private times = new Map<string, number>();
  private counting = false;
  /** Changes at every `start`, so a request begun before it cannot add its time to the new run. */
  private generation = 0;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

  private constructor(
    private readonly upstream: URL,
    private readonly servers: Server[],
    /** The counted port: for the functions' containers. */
    readonly endpoint: string,
    /** The uncounted port: for this process's own clients. */
    readonly localEndpoint: string,
  ) {}

  /** Starts both ports on free loopback ports, forwarding to the emulator at `upstream`. */
  static async listen(upstream: string): Promise<AwsCallCounter> {
    const servers = [createServer(), createServer()];
    const ports = await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
          }),
      ),
    );
    const counter = new AwsCallCounter(
      new URL(upstream),
      servers,
      `http://127.0.0.1:${ports[0]}`,
      `http://127.0.0.1:${ports[1]}`,
    );
    const [counted, local] = servers as [Server, Server];
    counted.on('request', (req, res) => counter.forward(req, res, true));
    local.on('request', (req, res) => counter.forward(req, res, false));
    for (const server of servers) server.keepAliveTimeout = 60_000;
    return counter;
  }

  private forward(incoming: IncomingMessage, answer: ServerResponse, countable: boolean): void {
    const started = performance.now();
    const method = incoming.method ?? 'GET';
    const url = incoming.url ?? '/';
    const key = countable && this.counting ? classify(method, url, incoming.headers) : undefined;
    const generation = this.generation;
    if (key) this.counts.set(key, (this.counts.get(key) ?? 0) + 1);

    const headers = forwardedHeaders(incoming.headers);
    // Host stays as the client signed it (SigV4 covers it); only the socket goes elsewhere.
    const chunked =
      incoming.headers['content-length'] === undefined &&
      /chunked/i.test(incoming.headers['transfer-encoding'] ?? '');
    if (chunked) headers['transfer-encoding'] = 'chunked';
    const outgoing = request({
      host: this.upstream.hostname,
      port: this.upstream.port,
      method,
      path: url,
      headers,
      agent: this.agent,
    });
    const fail = (error: Error) => {
      if (!answer.headersSent) {
        answer.writeHead(502, { 'content-type': 'text/plain' });
        answer.end(`bench proxy: ${error.message}`);
      } else answer.destroy(error);
      outgoing.destroy();
    };
    outgoing.on('error', fail);
    outgoing.on('response', (upstreamAnswer) => {
      answer.writeHead(upstreamAnswer.statusCode ?? 502, forwardedHeaders(upstreamAnswer.headers));
      upstreamAnswer.pipe(answer);
      upstreamAnswer.on('error', (error) => answer.destroy(error));
    });
    incoming.on('error', () => outgoing.destroy());
    incoming.pipe(outgoing);
    answer.on('close', () => {
      if (!answer.writableFinished) outgoing.destroy();
      if (key && generation === this.generation)
        this.times.set(key, (this.times.get(key) ?? 0) + performance.now() - started);
    });
  }

  /** Clears the counts and starts counting. */
  start(): void {
    this.counts.clear();
    this.times.clear();
    this.generation++;
    this.counting = true;
  }

  /** Stops counting and returns what was counted since `start`. */
  stop(): CallCounts {
    this.counting = false;
    return sorted(this.counts);
  }

  /**
   * Milliseconds from each counted request's arrival to the last byte of its answer, summed per
   * command since `start` (overlapping calls add up; a request still open when read is missing).
   */
  waited(): CallCounts {
    return sorted(this.times);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
    this.agent.destroy();
  }
}

function sorted(map: Map<string, number>): CallCounts {
  return Object.fromEntries([...map.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

export function totalOf(counts: CallCounts, service: AwsService): number {
  let total = 0;
  for (const [key, value] of Object.entries(counts)) if (key.startsWith(`${service}:`)) total += value;
  return total;
}

/** `a - b × times`, command by command (what remains once a known share of calls is taken out). */
export function subtractCounts(a: CallCounts, b: CallCounts, times: number): CallCounts {
  const result: CallCounts = { ...a };
  for (const [key, value] of Object.entries(b)) result[key] = (result[key] ?? 0) - value * times;
  return Object.fromEntries(Object.entries(result).filter(([, value]) => value !== 0));
}

/** `dynamodb:TransactWriteItems 300, dynamodb:GetItem 2` */
export function describeCounts(counts: CallCounts, per = 1): string {
  const entries = Object.entries(counts);
  if (entries.length === 0) return '(none)';
  return entries.map(([key, value]) => `${key} ${per === 1 ? value : (value / per).toFixed(3)}`).join(', ');
}
