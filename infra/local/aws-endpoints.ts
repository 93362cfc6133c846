/**
 * Where each AWS service lives locally. The SDK's own variables decide, service by service:
 * `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3` and `AWS_ENDPOINT_URL_SQS`, falling back to
 * `AWS_ENDPOINT_URL`. A service that none of them names gets the embedded emulator, so S3 and SQS
 * can come from LocalStack while DynamoDB stays on moto.
 */

export const LOCAL_SERVICES = ['dynamodb', 's3', 'sqs'] as const;
export type LocalService = (typeof LOCAL_SERVICES)[number];
export type AwsEndpoints = Record<LocalService, string>;

const variable: Record<LocalService, string> = {
  dynamodb: 'AWS_ENDPOINT_URL_DYNAMODB',
  s3: 'AWS_ENDPOINT_URL_S3',
  sqs: 'AWS_ENDPOINT_URL_SQS',
};

/** The endpoints that the environment names; a service it does not name is missing. */
export function endpointsFromEnvironment(env: Record<string, string | undefined>): Partial<AwsEndpoints> {
  const endpoints: Partial<AwsEndpoints> = {};
  for (const service of LOCAL_SERVICES) {
    const url = env[variable[service]] || env.AWS_ENDPOINT_URL || undefined;
    if (url) endpoints[service] = url;
  }
  return endpoints;
}

export function isComplete(endpoints: Partial<AwsEndpoints>): endpoints is AwsEndpoints {
  return LOCAL_SERVICES.every((service) => endpoints[service]);
}

/** The variables that point a process (a function's container, a CLI) at these endpoints. */
export function endpointEnvironment(endpoints: AwsEndpoints): Record<string, string> {
  return Object.fromEntries(LOCAL_SERVICES.map((service) => [variable[service], endpoints[service]]));
}

/** Every endpoint in one place, for logs: `dynamodb http://…, s3 http://…`. */
export function describeEndpoints(endpoints: AwsEndpoints): string {
  return LOCAL_SERVICES.map((service) => `${service} ${endpoints[service]}`).join(', ');
}
