/**
 * The local stand-in for Lambda's SQS event source: long-polls a queue, invokes the worker through
 * the local Lambda runtime (a container of its own) with an SQS event, and deletes only the messages
 * the worker did not report in `batchItemFailures`. A worker that throws, times out or crashes leaves
 * every message to reappear after the visibility timeout (and, after the queue's maxReceiveCount, to
 * move to the dead-letter queue), as in AWS.
 */
import { EventEmitter } from 'node:events';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { functions, type QueueWorkerName } from '../../shared/api/functions.ts';
import type { LambdaRuntime } from './lambda-runtime.ts';

export interface PumpTarget {
  worker: QueueWorkerName;
  queueUrl: string;
}

export interface InvocationReport {
  worker: QueueWorkerName;
  event: SQSEvent;
  failedMessageIds: string[];
  error?: unknown;
}

export interface QueuePump {
  /** Emits `invocation` with an InvocationReport after every worker call. */
  events: EventEmitter<{ invocation: [InvocationReport] }>;
  stop(): Promise<void>;
}

function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
        name,
        { dataType: value.DataType ?? 'String', stringValue: value.StringValue },
      ]),
    ),
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

export function startQueuePump(
  targets: PumpTarget[],
  aws: { endpoint: string; region: string; runtime: LambdaRuntime },
  log: (message: string, error?: unknown) => void = () => {},
): QueuePump {
  const sqs = new SQSClient({ endpoint: aws.endpoint, region: aws.region });
  const events = new EventEmitter<{ invocation: [InvocationReport] }>();
  const abort = new AbortController();
  let running = true;

  const pump = async ({ worker, queueUrl }: PumpTarget) => {
    const definition = functions[worker];
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
    );
    const queueArn = Attributes?.QueueArn ?? queueUrl;
    while (running) {
      let messages: Message[] = [];
      try {
        const received = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(10, definition.batchSize),
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: abort.signal },
        );
        messages = received.Messages ?? [];
      } catch (error) {
        if (!running) return;
        log(`queue pump for ${worker} could not receive`, error);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (messages.length === 0) continue;
      const event: SQSEvent = { Records: messages.map((m) => toRecord(m, queueArn, aws.region)) };
      let failedMessageIds: string[] = [];
      let invocationError: unknown;
      const invocation = await aws.runtime.invoke(worker, event);
      if (invocation.status === 'ok') {
        const response = invocation.result as SQSBatchResponse | undefined;
        failedMessageIds = (response?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
      } else {
        invocationError = Object.assign(new Error(invocation.errorMessage), { name: invocation.errorType });
        failedMessageIds = event.Records.map((r) => r.messageId);
        log(`${worker} failed; its messages will be retried`, invocationError);
      }
      const done = event.Records.filter((r) => !failedMessageIds.includes(r.messageId));
      if (done.length > 0) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
          }),
        );
      }
      events.emit('invocation', {
        worker,
        event,
        failedMessageIds,
        ...(invocationError ? { error: invocationError } : {}),
      });
    }
  };

  const loops = targets.map((target) =>
    pump(target).catch((error) => log(`queue pump for ${target.worker} stopped`, error)),
  );
  return {
    events,
    async stop() {
      running = false;
      abort.abort();
      await Promise.all(loops);
      sqs.destroy();
    },
  };
}
