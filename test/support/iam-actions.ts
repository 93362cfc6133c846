/**
 * The IAM authorization a request needs: (action, resource ARN) pairs, as AWS would check them for
 * the DynamoDB, SQS and S3 requests the functions send. ARNs use the local account and region
 * (LOCAL_ACCOUNT, us-east-1), the same ones the role policies are resolved with
 * (test/support/iam-policies.ts), so the two meet.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { s3Command } from './aws-requests.ts';

export const LOCAL_ACCOUNT = '000000000000';
export const IAM_REGION = 'us-east-1';

export interface IamCall {
  action: string;
  resource: string;
}

export const tableArn = (table: string) =>
  table.startsWith('arn:') ? table : `arn:aws:dynamodb:${IAM_REGION}:${LOCAL_ACCOUNT}:table/${table}`;
export const queueArn = (queueName: string) => `arn:aws:sqs:${IAM_REGION}:${LOCAL_ACCOUNT}:${queueName}`;
export const queueNameOf = (queueUrl: string) => queueUrl.replace(/\/+$/, '').split('/').pop() ?? queueUrl;
export const bucketArn = (bucket: string) => `arn:aws:s3:::${bucket}`;
export const objectArn = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;

type Json = Record<string, unknown>;
const record = (value: unknown): Json => (value && typeof value === 'object' ? (value as Json) : {});
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** A DynamoDB request (its X-Amz-Target command and JSON body). */
export function dynamoDbCalls(command: string, body: unknown): IamCall[] {
  const request = record(body);
  const onTable = (action: string, item: Json): IamCall => ({
    action: `dynamodb:${action}`,
    resource: tableArn(text(item.TableName) ?? '?'),
  });
  switch (command) {
    case 'TransactWriteItems': {
      const actions: Record<string, string> = {
        Put: 'PutItem',
        Update: 'UpdateItem',
        Delete: 'DeleteItem',
        ConditionCheck: 'ConditionCheckItem',
      };
      const items = Array.isArray(request.TransactItems) ? request.TransactItems : [];
      return items.flatMap((item) =>
        Object.entries(record(item)).flatMap(([kind, part]) => {
          const action = actions[kind];
          return action ? [onTable(action, record(part))] : [];
        }),
      );
    }
    case 'TransactGetItems': {
      const items = Array.isArray(request.TransactItems) ? request.TransactItems : [];
      return items.map((item) => onTable('GetItem', record(record(item).Get)));
    }
    case 'BatchGetItem':
    case 'BatchWriteItem':
      return Object.keys(record(request.RequestItems)).map((table) => ({
        action: `dynamodb:${command}`,
        resource: tableArn(table),
      }));
    case 'Query':
    case 'Scan': {
      const index = text(request.IndexName);
      const table = tableArn(text(request.TableName) ?? '?');
      return [{ action: `dynamodb:${command}`, resource: index ? `${table}/index/${index}` : table }];
    }
    default:
      return [onTable(command, request)];
  }
}

/** SQS batch commands are authorized as their single-message action. */
const SQS_ACTIONS: Record<string, string> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

/** An SQS request in the JSON protocol (its X-Amz-Target command and body). */
export function sqsCalls(command: string, body: unknown): IamCall[] {
  const request = record(body);
  const url = text(request.QueueUrl);
  const name = url ? queueNameOf(url) : (text(request.QueueName) ?? '*');
  return [{ action: `sqs:${SQS_ACTIONS[command] ?? command}`, resource: queueArn(name) }];
}

/** The S3 commands whose IAM action is not `s3:<Command>`, or that need more than one. */
function s3Actions(command: string): string[] {
  switch (command) {
    case 'HeadObject':
    case 'GetObject':
      return ['s3:GetObject'];
    case 'PutObject':
    case 'CopyObject':
    case 'CreateMultipartUpload':
    case 'UploadPart':
    case 'UploadPartCopy':
    case 'CompleteMultipartUpload':
      return ['s3:PutObject'];
    case 'ListParts':
      return ['s3:ListMultipartUploadParts'];
    case 'ListObjects':
    case 'ListObjectsV2':
    case 'HeadBucket':
      return ['s3:ListBucket'];
    case 'ListMultipartUploads':
      return ['s3:ListBucketMultipartUploads'];
    case 'DeleteObjects':
      return ['s3:DeleteObject'];
    default:
      return [`s3:${command}`];
  }
}

const BUCKET_LEVEL = new Set(['ListObjects', 'ListObjectsV2', 'HeadBucket', 'ListMultipartUploads']);

/**
 * A path-style S3 request. `deletedKeys` are the keys of a DeleteObjects body (each needs
 * s3:DeleteObject on its own ARN); a copy also needs s3:GetObject on its source.
 */
export function s3Calls(
  method: string,
  url: string,
  headers: IncomingHttpHeaders,
  deletedKeys: string[] = [],
): { command: string; calls: IamCall[] } {
  const parsed = new URL(url, 'http://proxy');
  const command = parsed.searchParams.get('x-id') ?? s3Command(method.toUpperCase(), parsed, headers);
  const [, rawBucket = '', ...rawKey] = parsed.pathname.split('/');
  const bucket = decodeURIComponent(rawBucket);
  const key = rawKey.map(decodeURIComponent).join('/');
  if (command === 'DeleteObjects') {
    return {
      command,
      calls: deletedKeys.map((deleted) => ({
        action: 's3:DeleteObject',
        resource: objectArn(bucket, deleted),
      })),
    };
  }
  const resource = BUCKET_LEVEL.has(command) || !key ? bucketArn(bucket) : objectArn(bucket, key);
  const calls = s3Actions(command).map((action) => ({ action, resource }));
  const copySource = headers['x-amz-copy-source'];
  if (typeof copySource === 'string') {
    const source = decodeURIComponent(copySource.split('?')[0] ?? '').replace(/^\//, '');
    calls.push({ action: 's3:GetObject', resource: `arn:aws:s3:::${source}` });
  }
  return { command, calls };
}

/** The keys of a DeleteObjects request body (`<Delete><Object><Key>…</Key></Object>…</Delete>`). */
export function deleteObjectsKeys(xml: string): string[] {
  return [...xml.matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((match) => unescapeXml(match[1] ?? ''));
}

function unescapeXml(value: string): string {
  return value.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_all, entity: string) => {
    if (entity.startsWith('#x')) return String.fromCodePoint(Number.parseInt(entity.slice(2), 16));
    if (entity.startsWith('#')) return String.fromCodePoint(Number.parseInt(entity.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[entity] ?? '';
  });
}

export function escapeXml(value: string): string {
  return value.replace(
    /[&<>"']/g,
    (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[char] ?? char,
  );
}
