/**
 * What the people who run the service look at: one CloudWatch dashboard and the alarms that page
 * them (API 5xx rate, p95 latency, 4xx and 429 spikes; any message in a dead-letter queue; a work
 * queue whose oldest message waits too long; Lambda throttles and errors; DynamoDB throttles and
 * system errors; a ledger that does not reconcile, and a reconciler that stopped running), all sent
 * to one SNS topic.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, metricDimensions, metricNames } from '../shared/observability/metric-names.ts';

export { METRICS_NAMESPACE };

/**
 * The metric the reconciler writes once per run, whatever it finds (functions/reconciler/handler.ts):
 * its absence is the heartbeat alarm.
 */
export const RECONCILER_HEARTBEAT_METRIC = metricNames.accountsReconciled;

/** The custom metric counting the API's 429 answers, from its access log. */
export const API_THROTTLED_METRIC = 'ApiTooManyRequests';

/** The table operations the functions use (shared/adapters/dynamo), watched for throttles and system errors. */
export const TABLE_OPERATIONS = [
  dynamodb.Operation.GET_ITEM,
  dynamodb.Operation.BATCH_GET_ITEM,
  dynamodb.Operation.QUERY,
  dynamodb.Operation.PUT_ITEM,
  dynamodb.Operation.UPDATE_ITEM,
  dynamodb.Operation.DELETE_ITEM,
  dynamodb.Operation.TRANSACT_WRITE_ITEMS,
] as const;

export interface WorkQueue {
  queue: sqs.IQueue;
  /** How long the oldest message may wait before someone is told. */
  maxAge: Duration;
  /** Why that long, for the alarm's description. */
  why: string;
}

export interface ToleratedErrors {
  /** Errors in 15 minutes above which the function's error alarm fires. */
  perFifteenMinutes: number;
  why: string;
}

export interface ObservabilityProps {
  stage: string;
  api: apigwv2.HttpApi;
  /** The API stage's access log group, where the 429 answers are counted. */
  apiAccessLogs: logs.ILogGroup;
  functions: Record<string, lambda.IFunction>;
  /** Functions whose errors include other parties' failures: alarmed only when many happen. */
  toleratedErrors?: Record<string, ToleratedErrors>;
  deadLetterQueues: Record<string, sqs.IQueue>;
  workQueues: Record<string, WorkQueue>;
  table: dynamodb.ITableV2;
  /** The reconciler's schedule: its heartbeat is expected once per this many minutes. */
  reconcilerEveryMinutes: number;
  /** Subscribes this address to the alarm topic. */
  alarmEmail?: string | undefined;
}

export class Observability extends Construct {
  readonly alarmTopic: sns.Topic;
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `credit-predictions ${props.stage} alarms`,
      enforceSSL: true,
    });
    Validations.of(this.alarmTopic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed SNS key (its key policy cannot ' +
        'be changed to let cloudwatch.amazonaws.com use it), and a customer-managed key would protect alarm names, ' +
        'states and descriptions only: notifications carry no customer data.',
    });
    if (props.alarmEmail)
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    for (const fn of Object.values(props.functions)) {
      // Active tracing (prod, or `-c tracing=true`) adds xray:PutTraceSegments and xray:PutTelemetryRecords to the
      // role; X-Ray offers no resource-level permissions for them, so `*` is the only possible resource.
      const cfn = fn.node.defaultChild;
      const tracing =
        cfn instanceof lambda.CfnFunction ? (cfn.tracingConfig as { mode?: string } | undefined) : undefined;
      if (tracing?.mode === lambda.Tracing.ACTIVE) {
        Validations.of(fn).acknowledge({
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: 'X-Ray tracing: PutTraceSegments and PutTelemetryRecords support no resource but *.',
        });
      }
    }
    const notify = new actions.SnsAction(this.alarmTopic);
    // Missing data means nothing happened (no request, no message, no error) unless an alarm says otherwise.
    const alarm = (name: string, options: cloudwatch.AlarmProps) => {
      const created = new cloudwatch.Alarm(this, name, {
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...options,
      });
      created.addAlarmAction(notify);
      created.addOkAction(notify);
      this.alarms.push(created);
      return created;
    };

    const period = Duration.minutes(5);
    const apiId = props.api.apiId;
    const apiMetric = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName,
        dimensionsMap: { ApiId: apiId },
        statistic,
        period,
      });
    const requests = apiMetric('Count', 'Sum');
    const errors5xx = apiMetric('5xx', 'Sum');
    const errors4xx = apiMetric('4xx', 'Sum');
    const latencyP95 = apiMetric('Latency', 'p95');
    const serverErrorRate = new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * serverErrors / requests, 0)',
      usingMetrics: { requests, serverErrors: errors5xx },
      label: '5xx rate (%)',
      period,
    });
    alarm('Api5xxRate', {
      metric: serverErrorRate,
      threshold: 1,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: 'More than 1% of API requests failed with a 5xx for 10 of the last 15 minutes.',
    });
    alarm('ApiLatencyP95', {
      metric: latencyP95,
      threshold: 3000,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: 'The API p95 latency has been above 3 s for 15 minutes.',
    });
    // Some 4xx are normal (expired tokens, unknown ids, too few credits); a quarter of a busy
    // period's answers is not: credential stuffing, a flood being throttled, a broken client release.
    const clientErrorRate = new cloudwatch.MathExpression({
      expression: 'IF(requests >= 50, 100 * clientErrors / requests, 0)',
      usingMetrics: { requests, clientErrors: errors4xx },
      label: '4xx rate (%)',
      period,
    });
    alarm('Api4xxRate', {
      metric: clientErrorRate,
      threshold: 25,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription:
        'More than 25% of API requests (at 50 or more per 5 minutes) got a 4xx for 10 of the last 15 minutes: ' +
        'failed sign-ins, throttling or a broken client.',
    });
    // HTTP APIs publish no 429 metric of their own: it is counted from the access log, and so
    // includes the gateway's throttling and the service's own 429s (sign-in and prediction limits).
    new logs.MetricFilter(this, 'ApiTooManyRequestsFilter', {
      logGroup: props.apiAccessLogs,
      filterPattern: logs.FilterPattern.stringValue('$.status', '=', '429'),
      metricNamespace: METRICS_NAMESPACE,
      metricName: API_THROTTLED_METRIC,
      // The access log's apiId (infra/stateless-stack.ts), so that two stages in one account count apart.
      dimensions: { ApiId: '$.apiId' },
      metricValue: '1',
    });
    const throttledRequests = new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: API_THROTTLED_METRIC,
      dimensionsMap: { ApiId: apiId },
      statistic: 'Sum',
      period,
    });
    alarm('ApiTooManyRequests', {
      metric: throttledRequests,
      threshold: 100,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription:
        'More than 100 requests were answered 429 in 5 minutes: a client (or an attacker) is hitting the stage, ' +
        'route or per-user limits.',
    });

    for (const [name, queue] of Object.entries(props.deadLetterQueues)) {
      alarm(`${name}DeadLetters`, {
        metric: queue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(1),
          statistic: 'Maximum',
        }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        alarmDescription: `A message reached the ${name} dead-letter queue: work that failed repeatedly needs a look.`,
      });
    }

    for (const [name, { queue, maxAge, why }] of Object.entries(props.workQueues)) {
      alarm(`${name}QueueAge`, {
        metric: queue.metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum' }),
        threshold: maxAge.toSeconds(),
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        alarmDescription: `A message has waited more than ${maxAge.toHumanString()} in the ${name} queue: ${why}`,
      });
    }

    for (const [name, fn] of Object.entries(props.functions)) {
      const tolerated = props.toleratedErrors?.[name];
      alarm(`${name}Errors`, {
        metric: fn.metricErrors({ period: tolerated ? Duration.minutes(15) : period, statistic: 'Sum' }),
        threshold: tolerated?.perFifteenMinutes ?? 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        alarmDescription: tolerated
          ? `The ${name} function failed more than ${tolerated.perFifteenMinutes} times in 15 minutes (${tolerated.why}).`
          : `The ${name} function failed (an error it did not answer, a timeout or a crash).`,
      });
      alarm(`${name}Throttles`, {
        metric: fn.metricThrottles({ period, statistic: 'Sum' }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        alarmDescription: `The ${name} function was throttled (concurrency limit reached).`,
      });
    }

    const custom = (metricName: string, statistic = 'Sum') =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: metricDimensions(props.stage),
        statistic,
        period,
      });
    alarm('ReconciliationMismatch', {
      metric: custom(metricNames.reconciliationMismatches, 'Maximum'),
      threshold: 0,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: 'An account balance differs from the sum of its ledger: money is wrong somewhere.',
    });
    // A reconciler that stops running reports no mismatch either: its silence must page as well.
    const heartbeat = new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: RECONCILER_HEARTBEAT_METRIC,
      dimensionsMap: metricDimensions(props.stage),
      statistic: 'SampleCount',
      period: Duration.minutes(props.reconcilerEveryMinutes),
    });
    alarm('ReconcilerHeartbeat', {
      metric: heartbeat,
      threshold: 1,
      // Two schedule periods, so that a run landing late in its hour cannot look like a missed one.
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription:
        `The reconciler has not finished a run for two of its ${props.reconcilerEveryMinutes}-minute periods: ` +
        'ledger mismatches would go unnoticed. See its logs and its schedule dead-letter queue.',
    });

    // One series per operation, each FILLed with 0: DynamoDB writes a datapoint only for an
    // operation that had one, and a sum with a missing term would be missing too.
    const tableSum = (metricName: string, label: string) =>
      new cloudwatch.MathExpression({
        expression: TABLE_OPERATIONS.map((operation) => `FILL(${operation.toLowerCase()}, 0)`).join(' + '),
        usingMetrics: Object.fromEntries(
          TABLE_OPERATIONS.map((operation) => [
            operation.toLowerCase(),
            new cloudwatch.Metric({
              namespace: 'AWS/DynamoDB',
              metricName,
              dimensionsMap: { TableName: props.table.tableName, Operation: operation },
              statistic: 'Sum',
              period,
            }),
          ]),
        ),
        label,
        period,
      });
    const tableThrottles = tableSum('ThrottledRequests', 'Table throttled requests');
    const tableSystemErrors = tableSum('SystemErrors', 'Table system errors');
    alarm('TableThrottles', {
      metric: tableThrottles,
      threshold: 0,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription:
        'DynamoDB throttled requests to the table (a hot key, or on-demand scaling behind a sudden surge).',
    });
    alarm('TableSystemErrors', {
      metric: tableSystemErrors,
      threshold: 0,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: 'DynamoDB answered requests to the table with 500s (a problem on the AWS side).',
    });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `credit-predictions-${props.stage}`,
      defaultInterval: Duration.hours(6),
    });
    const functionList = Object.entries(props.functions);
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'API requests and errors',
        left: [requests, errors4xx, errors5xx],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'API latency',
        left: [apiMetric('Latency', 'p50'), latencyP95, apiMetric('Latency', 'p99')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'API error rates (%) and 429s',
        left: [serverErrorRate, clientErrorRate],
        right: [throttledRequests],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Predictions and failures',
        left: [custom(metricNames.predictions), custom(metricNames.predictionFailures)],
        right: [custom(metricNames.creditsCharged)],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Prediction latency (ms)',
        left: [custom(metricNames.predictionLatency, 'p50'), custom(metricNames.predictionLatency, 'p95')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Batch rows and reconciliation',
        left: [custom(metricNames.batchRows)],
        right: [custom(metricNames.reconciliationMismatches, 'Maximum')],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Lambda errors',
        left: functionList.map(([name, fn]) => fn.metricErrors({ period, label: name })),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Lambda throttles',
        left: functionList.map(([name, fn]) => fn.metricThrottles({ period, label: name })),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Lambda duration p95',
        left: functionList.map(([name, fn]) => fn.metricDuration({ period, statistic: 'p95', label: name })),
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'DynamoDB throttled requests', left: [tableThrottles], width: 12 }),
      new cloudwatch.GraphWidget({ title: 'DynamoDB system errors', left: [tableSystemErrors], width: 12 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Queue backlog',
        left: Object.entries(props.workQueues).map(([name, { queue }]) =>
          queue.metricApproximateNumberOfMessagesVisible({ period, label: name }),
        ),
        right: Object.entries(props.workQueues).map(([name, { queue }]) =>
          queue.metricApproximateAgeOfOldestMessage({ period, label: `${name} oldest (s)` }),
        ),
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queues',
        left: Object.entries(props.deadLetterQueues).map(([name, q]) =>
          q.metricApproximateNumberOfMessagesVisible({ period, label: name }),
        ),
        width: 12,
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }),
    );
  }
}
