/**
 * What an AWS request sent to a local endpoint is, read at the wire: the bench's counting proxy
 * (test/bench/aws-calls.ts) and the tests' IAM check (test/support/iam-check.ts) both classify the
 * functions' requests here. A request is classified by its X-Amz-Target (`DynamoDB_20120810.TransactWriteItems` →
 * `dynamodb:TransactWriteItems`, `AmazonSQS.ReceiveMessage` → `sqs:ReceiveMessage`); anything else
 * is S3 (path-style, as the local clients send it), named by the SDK's `x-id` query parameter when it
 * sends one, else by method and path (best effort). A presigned URL is no SDK call of a function.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Headers that belong to one connection, not to the request or answer being forwarded. */
export const HOP_BY_HOP = new Set([
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

export function s3Command(method: string, url: URL, headers: IncomingHttpHeaders): string {
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

export function forwardedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}
