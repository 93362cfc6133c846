/**
 * One client per AWS service per container. Each is pointed at an emulator when the SDK's
 * per-service variable (`AWS_ENDPOINT_URL_S3`, ...) or the shared `AWS_ENDPOINT_URL` names one (read
 * once, in shared/config.ts); in AWS none is set and the SDK finds the regional endpoint.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';

const at = (endpoint: string | undefined) => {
  const { region } = config();
  return endpoint ? { region, endpoint } : { region };
};

let dynamo: DynamoDBDocumentClient | undefined;
let s3: S3Client | undefined;
let sqs: SQSClient | undefined;

export function dynamoClient(): DynamoDBDocumentClient {
  dynamo ??= DynamoDBDocumentClient.from(
    new DynamoDBClient({ ...at(config().endpoints.dynamodb), maxAttempts: 3 }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  return dynamo;
}

export function s3Client(): S3Client {
  const endpoint = config().endpoints.s3;
  s3 ??= new S3Client({
    ...at(endpoint),
    // Emulators serve buckets by path, not by virtual host.
    forcePathStyle: Boolean(endpoint),
    // This client signs the presigned upload URLs. With the SDK's default (WHEN_SUPPORTED) a
    // presigned PutObject carries the CRC32 of the empty body it had at signing time, and every S3
    // that checks it (SeaweedFS, R2, MinIO) refuses the real upload. A checksum goes into a URL only
    // when the caller supplied one.
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  return s3;
}

export function sqsClient(): SQSClient {
  sqs ??= new SQSClient(at(config().endpoints.sqs));
  return sqs;
}
