/**
 * Each function's role policy, read from the synthesized app (`buildApp`, bundling skipped), and an
 * evaluator that asks an IAM policy simulator (@cloud-copilot/iam-simulate) whether the role allows
 * a call.
 *
 * The template names resources by reference (the stateless stack imports the stateful stack's ARNs),
 * and a test stack's resources have names of their own (a prefix per test file). So the policies are
 * kept in a token form, `arn:aws:dynamodb:us-east-1:000000000000:table/{{table}}/index/*`, written
 * once per run (global setup), and each test stack fills the tokens with its own resource names.
 */

import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { CfnElement, Stack } from 'aws-cdk-lib';
import type { LocalResources } from '../../infra/local/provision.ts';
import { IAM_REGION, type IamCall, LOCAL_ACCOUNT, queueNameOf } from './iam-actions.ts';

/** One Allow or Deny statement, its resources in token form (or filled in). */
export interface RoleStatement {
  effect: 'Allow' | 'Deny';
  actions: string[];
  resources: string[];
}

/** Per function, the statements of the policies attached to its role (the managed Logs policy aside). */
export type RolePolicies = Record<string, RoleStatement[]>;

/** The stateful resources a token names, and what fills it in a test stack. */
const TOKENS = {
  table: (r: LocalResources) => r.tableName,
  modelsBucket: (r: LocalResources) => r.modelsBucket,
  batchBucket: (r: LocalResources) => r.batchBucket,
  modelQueue: (r: LocalResources) => queueNameOf(r.modelQueueUrl),
  modelDeadLetterQueue: (r: LocalResources) => queueNameOf(r.modelDeadLetterQueueUrl),
  batchQueue: (r: LocalResources) => queueNameOf(r.batchQueueUrl),
  batchDeadLetterQueue: (r: LocalResources) => queueNameOf(r.batchDeadLetterQueueUrl),
  notificationQueue: (r: LocalResources) => queueNameOf(r.notificationQueueUrl),
  notificationDeadLetterQueue: (r: LocalResources) => queueNameOf(r.notificationDeadLetterQueueUrl),
} satisfies Record<string, (resources: LocalResources) => string>;
type Token = keyof typeof TOKENS;

type Json = Record<string, unknown>;
type Template = { Resources: Record<string, { Type: string; Properties?: Json }>; Outputs?: Json };

/** Synthesizes the dev app (bundling skipped: seconds) and returns each function's role statements. */
export async function synthesizeRolePolicies(): Promise<RolePolicies> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { buildApp } = await import('../../infra/app.ts');
  const outdir = mkdtempSync(join(tmpdir(), 'credit-predictions-iam-'));
  try {
    const built = buildApp({ context: { stage: 'dev', 'aws:cdk:bundling-stacks': [] }, outdir });
    const assembly = built.app.synth();
    const stateless = assembly.getStackByName(built.stateless.stackName).template as Template;
    const stateful = assembly.getStackByName(built.stateful.stackName).template as Template;
    const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
      stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const s = built.stateful;
    const kinds: Record<string, { token: Token; kind: 'table' | 'bucket' | 'queue' }> = {
      [logicalId(s, s.table)]: { token: 'table', kind: 'table' },
      [logicalId(s, s.modelsBucket)]: { token: 'modelsBucket', kind: 'bucket' },
      [logicalId(s, s.batchBucket)]: { token: 'batchBucket', kind: 'bucket' },
      [logicalId(s, s.modelQueue)]: { token: 'modelQueue', kind: 'queue' },
      [logicalId(s, s.modelDeadLetterQueue)]: { token: 'modelDeadLetterQueue', kind: 'queue' },
      [logicalId(s, s.batchQueue)]: { token: 'batchQueue', kind: 'queue' },
      [logicalId(s, s.batchDeadLetterQueue)]: { token: 'batchDeadLetterQueue', kind: 'queue' },
      [logicalId(s, s.notificationQueue)]: { token: 'notificationQueue', kind: 'queue' },
      [logicalId(s, s.notificationDeadLetterQueue)]: { token: 'notificationDeadLetterQueue', kind: 'queue' },
    };
    const exports = new Map<string, unknown>();
    for (const output of Object.values(stateful.Outputs ?? {})) {
      const { Value, Export } = output as { Value: unknown; Export?: { Name?: string } };
      if (Export?.Name) exports.set(Export.Name, Value);
    }
    const statefulValue = (id: string, attribute: 'Ref' | string): string => {
      const known = kinds[id];
      if (!known) return `{{stateful:${id}.${attribute}}}`;
      const name = `{{${known.token}}}`;
      if (attribute === 'Ref') return name;
      if (attribute === 'Arn') {
        if (known.kind === 'table') return `arn:aws:dynamodb:${IAM_REGION}:${LOCAL_ACCOUNT}:table/${name}`;
        if (known.kind === 'bucket') return `arn:aws:s3:::${name}`;
        return `arn:aws:sqs:${IAM_REGION}:${LOCAL_ACCOUNT}:${name}`;
      }
      return `{{stateful:${id}.${attribute}}}`;
    };
    const resolve = (value: unknown, inStateful: boolean): string => {
      if (typeof value === 'string') return value;
      const node = value as Json;
      if (typeof node.Ref === 'string') {
        const pseudo: Record<string, string> = {
          'AWS::Partition': 'aws',
          'AWS::Region': IAM_REGION,
          'AWS::AccountId': LOCAL_ACCOUNT,
          'AWS::URLSuffix': 'amazonaws.com',
        };
        if (pseudo[node.Ref]) return pseudo[node.Ref] as string;
        return inStateful ? statefulValue(node.Ref, 'Ref') : `{{stateless:${node.Ref}}}`;
      }
      if (Array.isArray(node['Fn::GetAtt'])) {
        const [id, attribute] = node['Fn::GetAtt'] as [string, string];
        return inStateful ? statefulValue(id, attribute) : `{{stateless:${id}.${attribute}}}`;
      }
      if (typeof node['Fn::ImportValue'] === 'string') {
        const exported = exports.get(node['Fn::ImportValue']);
        if (exported === undefined) return `{{import:${node['Fn::ImportValue']}}}`;
        return resolve(exported, true);
      }
      if (Array.isArray(node['Fn::Join'])) {
        const [separator, parts] = node['Fn::Join'] as [string, unknown[]];
        return parts.map((part) => resolve(part, inStateful)).join(separator);
      }
      return `{{unresolved:${JSON.stringify(node)}}}`;
    };
    const list = <T>(value: T | T[] | undefined): T[] =>
      value === undefined ? [] : Array.isArray(value) ? value : [value];

    const policies: RolePolicies = {};
    for (const [name, fn] of Object.entries(built.stateless.functions)) {
      if (!fn.role) throw new Error(`The ${name} function has no role`);
      const roleId = logicalId(built.stateless, fn.role);
      const statements: RoleStatement[] = [];
      for (const resource of Object.values(stateless.Resources)) {
        if (resource.Type !== 'AWS::IAM::Policy') continue;
        const roles = list(resource.Properties?.Roles as unknown[]).map((role) => (role as Json).Ref);
        if (!roles.includes(roleId)) continue;
        const document = resource.Properties?.PolicyDocument as { Statement: Json[] };
        for (const statement of document.Statement) {
          statements.push({
            effect: statement.Effect === 'Deny' ? 'Deny' : 'Allow',
            actions: list(statement.Action as string | string[]),
            resources: list(statement.Resource).map((r) => resolve(r, false)),
          });
        }
      }
      policies[name] = statements;
    }
    return policies;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Fills a token-form resource with a test stack's names. */
export function fillTokens(resource: string, resources: LocalResources): string {
  return resource.replace(/\{\{(\w+)\}\}/g, (whole, token: string) =>
    token in TOKENS ? TOKENS[token as Token](resources) : whole,
  );
}

/** IAM's wildcard match: `*` any run of characters, `?` one; actions ignore case. */
export function iamPattern(pattern: string, ignoreCase: boolean): RegExp {
  const body = pattern
    .split('')
    .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.+^${}()|[\]\\/]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, ignoreCase ? 'i' : '');
}

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

/**
 * Decides calls of one function against its role's statements (resources filled in), with the IAM
 * policy simulator; answers are cached per (action, resource). Also tells which grants, as
 * (action pattern, token-form resource), a call exercised.
 */
export class RoleEvaluator {
  private readonly cache = new Map<string, Promise<Decision>>();
  private readonly grants: { key: string; action: RegExp; resource: RegExp }[] = [];
  private readonly policy: { Version: string; Statement: Json[] };

  constructor(
    readonly functionName: string,
    statements: RoleStatement[],
    resources: LocalResources,
  ) {
    const filled = statements.map((statement) => ({
      ...statement,
      resources: statement.resources.map((resource) => fillTokens(resource, resources)),
    }));
    this.policy = {
      Version: '2012-10-17',
      Statement: filled.map((statement) => ({
        Effect: statement.effect,
        Action: statement.actions,
        Resource: statement.resources,
      })),
    };
    statements.forEach((statement, index) => {
      if (statement.effect !== 'Allow') return;
      for (const action of statement.actions)
        statement.resources.forEach((resource, r) => {
          this.grants.push({
            key: grantKey(functionName, action, resource),
            action: iamPattern(action, true),
            resource: iamPattern(filled[index]?.resources[r] ?? resource, false),
          });
        });
    });
  }

  decide(call: IamCall): Promise<Decision> {
    const key = `${call.action} ${call.resource}`;
    let decision = this.cache.get(key);
    if (!decision) {
      decision = this.simulate(call);
      this.cache.set(key, decision);
    }
    return decision;
  }

  /** The grants (see grantKey) an allowed call used. */
  exercised(call: IamCall): string[] {
    return this.grants
      .filter((grant) => grant.action.test(call.action) && grant.resource.test(call.resource))
      .map((grant) => grant.key);
  }

  private async simulate(call: IamCall): Promise<Decision> {
    const result = await runSimulation(
      {
        identityPolicies: [{ name: `${this.functionName}-role`, policy: this.policy }],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        request: {
          action: call.action,
          principal: `arn:aws:iam::${LOCAL_ACCOUNT}:role/${this.functionName}`,
          resource: { accountId: LOCAL_ACCOUNT, resource: call.resource },
          contextVariables: {},
        },
      },
      {},
    );
    if (result.resultType === 'error') {
      throw new Error(
        `The IAM simulator refused ${call.action} on ${call.resource}: ${JSON.stringify(result.errors)}`,
      );
    }
    return result.overallResult as Decision;
  }
}

/** `batch-worker s3:PutObject arn:aws:s3:::{{batchBucket}}/*`: one action of one statement on one resource. */
export function grantKey(functionName: string, action: string, resource: string): string {
  return `${functionName} ${action} ${resource}`;
}

/** Every grant of every role, as grantKey spells them. */
export function allGrants(policies: RolePolicies): string[] {
  const keys = new Set<string>();
  for (const [name, statements] of Object.entries(policies))
    for (const statement of statements)
      if (statement.effect === 'Allow')
        for (const action of statement.actions)
          for (const resource of statement.resources) keys.add(grantKey(name, action, resource));
  return [...keys];
}
