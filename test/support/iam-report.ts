/**
 * The run's IAM report, made by the global teardown from what each test stack's IAM check wrote
 * (test/support/iam-check.ts): every denied call (which fails the run), the calls per function and
 * action, and the grants of the synthesized roles that no test exercised (listed, not failed: the
 * suite may not reach everything a function may do, or the grant may be one to remove).
 * Written to test-artifacts/iam-report.json.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Denial, describeDenials, IAM_REPORT_FILE, IAM_RUNS_DIR, type IamRun } from './iam-check.ts';
import { allGrants, type RolePolicies } from './iam-policies.ts';

/**
 * Grants that Lambda uses, not the function's code: the SQS event source's poller receives, deletes
 * and hides messages for the function (locally, the queue pump does it with its own client).
 */
const EVENT_SOURCE_ACTIONS = new Set([
  'sqs:ReceiveMessage',
  'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibility',
  'sqs:GetQueueAttributes',
  'sqs:GetQueueUrl',
]);

export interface IamReport {
  stacks: number;
  denials: Denial[];
  calls: Record<string, Record<string, number>>;
  /** `function action resource` (resources in the token form of iam-policies.ts). */
  unexercised: string[];
  /** Unexercised grants of an event source's statement (used by Lambda's poller, not the code). */
  eventSourceGrants: string[];
}

export function buildIamReport(policies: RolePolicies, runs: IamRun[]): IamReport {
  const exercised = new Set(runs.flatMap((run) => run.exercised));
  const calls: Record<string, Record<string, number>> = {};
  for (const run of runs)
    for (const [fn, actions] of Object.entries(run.calls))
      for (const [action, count] of Object.entries(actions)) {
        const perFunction = calls[fn] ?? {};
        calls[fn] = perFunction;
        perFunction[action] = (perFunction[action] ?? 0) + count;
      }
  const unused = allGrants(policies).filter((grant) => !exercised.has(grant));
  const isEventSource = (grant: string) => EVENT_SOURCE_ACTIONS.has(grant.split(' ')[1] ?? '');
  return {
    stacks: runs.length,
    denials: runs.flatMap((run) => run.denials),
    calls,
    unexercised: unused.filter((grant) => !isEventSource(grant)),
    eventSourceGrants: unused.filter(isEventSource),
  };
}

/** Writes the report and prints its summary; throws when a call was denied. */
export function reportIamRuns(policies: RolePolicies, log: (line: string) => void): IamReport | undefined {
  const files = existsSync(IAM_RUNS_DIR) ? readdirSync(IAM_RUNS_DIR).filter((f) => f.endsWith('.json')) : [];
  if (files.length === 0) return undefined;
  const runs = files.map((file) => JSON.parse(readFileSync(join(IAM_RUNS_DIR, file), 'utf8')) as IamRun);
  const report = buildIamReport(policies, runs);
  writeFileSync(IAM_REPORT_FILE, `${JSON.stringify(report, null, 2)}\n`);
  log(
    `IAM check: ${report.stacks} test stacks, ${report.denials.length} denied calls, ` +
      `${report.unexercised.length} grants no test exercised (test-artifacts/iam-report.json):`,
  );
  const byFunction = new Map<string, Set<string>>();
  for (const grant of report.unexercised) {
    const [fn = '', action = ''] = grant.split(' ');
    byFunction.set(fn, (byFunction.get(fn) ?? new Set()).add(action));
  }
  for (const [fn, actions] of byFunction) log(`  ${fn}: ${[...actions].join(', ')}`);
  if (report.denials.length > 0) {
    throw new Error(
      `The IAM check denied ${report.denials.length} calls the functions made:\n${describeDenials(report.denials)}`,
    );
  }
  return report;
}
