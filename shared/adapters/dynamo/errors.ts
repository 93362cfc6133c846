import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';

export interface CancellationReason {
  Code?: string | undefined;
  Item?: Record<string, unknown> | undefined;
}

/** The per-action reasons of a cancelled transaction, or undefined for any other error. */
export function cancellationReasons(error: unknown): CancellationReason[] | undefined {
  if (
    error instanceof TransactionCanceledException ||
    (error as { name?: string })?.name === 'TransactionCanceledException'
  ) {
    return ((error as TransactionCanceledException).CancellationReasons ?? []) as CancellationReason[];
  }
  return undefined;
}

export function isConditionalCheckFailed(error: unknown): boolean {
  return (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}
