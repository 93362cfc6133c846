/**
 * What the people who run the service look at: one CloudWatch dashboard and the alarms that page
 * them (API 5xx rate and p95 latency, any message in a dead-letter queue, Lambda throttles and
 * errors, a ledger that does not reconcile), all sent to one SNS topic.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export const METRICS_NAMESPACE = 'CreditPredictions';

export interface ObservabilityProps {
  stage: string;
  api: apigwv2.HttpApi;
  functions: Record<string, lambda.IFunction>;
  deadLetterQueues: Record<string, sqs.IQueue>;
  workQueues: Record<string, sqs.IQueue>;
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
        'Alarm notifications carry alarm names and states only, no customer data; the AWS-managed key would add cost without protecting anything secret.',
    });
    if (props.alarmEmail)
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    for (const fn of Object.values(props.functions)) {
      // Active tracing (`-c tracing=true`) adds xray:PutTraceSegments and xray:PutTelemetryRecords to the
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
    const alarm = (name: string, options: Omit<cloudwatch.AlarmProps, 'treatMissingData'>) => {
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
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: { requests, errors: errors5xx },
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

    for (const [name, fn] of Object.entries(props.functions)) {
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
        dimensionsMap: { service: 'credit-predictions', stage: props.stage },
        statistic,
        period,
      });
    alarm('ReconciliationMismatch', {
      metric: custom('ReconciliationMismatches', 'Maximum'),
      threshold: 0,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: 'An account balance differs from the sum of its ledger: money is wrong somewhere.',
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
      new cloudwatch.GraphWidget({ title: 'API 5xx rate (%)', left: [serverErrorRate], width: 8 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Predictions and failures',
        left: [custom('Predictions'), custom('PredictionFailures')],
        right: [custom('CreditsCharged')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Prediction latency (ms)',
        left: [custom('PredictionLatency', 'p50'), custom('PredictionLatency', 'p95')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Batch rows and reconciliation',
        left: [custom('BatchRows')],
        right: [custom('ReconciliationMismatches', 'Maximum')],
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
      new cloudwatch.GraphWidget({
        title: 'Queue backlog',
        left: Object.entries(props.workQueues).map(([name, q]) =>
          q.metricApproximateNumberOfMessagesVisible({ period, label: name }),
        ),
        right: Object.entries(props.workQueues).map(([name, q]) =>
          q.metricApproximateAgeOfOldestMessage({ period, label: `${name} oldest (s)` }),
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
