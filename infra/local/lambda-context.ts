import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import type { FunctionDefinition } from '../../shared/api/functions.ts';

/** A Lambda context like the runtime's, with the function's own timeout and memory. */
export function lambdaContext(
  name: string,
  definition: Pick<FunctionDefinition, 'timeoutSeconds' | 'memoryMb'>,
): Context {
  const deadline = Date.now() + definition.timeoutSeconds * 1000;
  const fail = () => {
    throw new Error('Legacy Lambda callbacks are not supported');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: `local-${name}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:local-${name}`,
    memoryLimitInMB: String(definition.memoryMb),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/local-${name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: fail,
    fail,
    succeed: fail,
  };
}
