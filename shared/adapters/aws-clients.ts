/** One client per AWS service per container, pointed at the emulator when AWS_ENDPOINT_URL is set. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';

const common = () => {
  const { region, endpointUrl } = config();
  return endpointUrl ? { region, endpoint: endpointUrl } : { region };
};

let dynamo: DynamoDBDocumentClient | undefined;
let s3: S3Client | undefined;
let sqs: SQSClient | undefined;

export function dynamoClient(): DynamoDBDocumentClient {
  dynamo ??= DynamoDBDocumentClient.from(new DynamoDBClient({ ...common(), maxAttempts: 3 }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return dynamo;
}

export function s3Client(): S3Client {
  // Emulators serve buckets by path, not by virtual host.
  s3 ??= new S3Client({ ...common(), forcePathStyle: Boolean(config().endpointUrl) });
  return s3;
}

export function sqsClient(): SQSClient {
  sqs ??= new SQSClient(common());
  return sqs;
}
