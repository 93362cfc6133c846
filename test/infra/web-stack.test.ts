/**
 * What the web stack promises: a private, encrypted, TLS-only bucket read by CloudFront through an
 * Origin Access Control, the API's paths routed uncached to the HTTP API on the same origin, the
 * app's routes rewritten to index.html, security headers, and no unacknowledged cdk-nag finding.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { App, type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import { stageSettings } from '../../infra/stage.ts';
import {
  API_PATH_PATTERNS,
  ORIGIN_VERIFY_HEADER,
  SPA_REWRITE_FUNCTION,
  WAF_REQUESTS_PER_ADDRESS,
  WAF_SIGN_INS_PER_ADDRESS,
  WebStack,
} from '../../infra/web-stack.ts';

type Json = Record<string, any>;

// A synth takes seconds alone and far longer beside other test processes: give each test the time.
vi.setConfig({ testTimeout: 180_000 });

const outdirs: string[] = [];
afterAll(() => {
  for (const outdir of outdirs) rmSync(outdir, { recursive: true, force: true });
});
const tempDir = (label: string) => {
  const dir = mkdtempSync(join(tmpdir(), `credit-predictions-${label}-`));
  outdirs.push(dir);
  return dir;
};

interface Synthesized {
  built: ReturnType<typeof buildApp>;
  template: Template;
  /** `<rule> <construct path>` of every cdk-nag finding in the web stack. */
  nagFindings: string[];
}

/**
 * Synthesizes the app once per stage, as the CLI does with bundling skipped. A synth that cdk-nag
 * fails still writes the templates and the validation report, so the other checks can run and the
 * nag check can name what it found.
 */
const apps = new Map<string, Synthesized>();
function webApp(stage: 'dev' | 'prod', context: Record<string, string> = {}): Synthesized {
  const key = JSON.stringify([stage, context]);
  let app = apps.get(key);
  if (!app) {
    const outdir = tempDir('web');
    const built = buildApp({
      context: {
        stage,
        'aws:cdk:bundling-stacks': [],
        // A prod synth needs someone to receive its alarms.
        ...(stage === 'prod' ? { alarmEmail: 'ops@example.com' } : {}),
        ...context,
      },
      outdir,
    });
    let synthError: unknown;
    try {
      built.app.synth();
    } catch (error) {
      synthError = error;
    }
    const reportFile = join(outdir, 'validation-report.json');
    const report = existsSync(reportFile)
      ? JSON.parse(readFileSync(reportFile, 'utf8'))
      : { pluginReports: [] };
    const nagFindings = (report.pluginReports as Json[])
      .flatMap((plugin) => plugin.violations as Json[])
      .flatMap((violation) =>
        (violation.violatingConstructs as Json[])
          .filter((c) => String(c.constructPath).startsWith(`${built.web.stackName}/`))
          .map((c) => `${violation.ruleName} ${c.constructPath}`),
      );
    const templateFile = join(outdir, built.web.templateFile);
    if (!existsSync(templateFile)) throw synthError ?? new Error(`No template at ${templateFile}`);
    app = { built, template: Template.fromJSON(JSON.parse(readFileSync(templateFile, 'utf8'))), nagFindings };
    apps.set(key, app);
  }
  return app;
}

/** The cdk-nag rules acknowledged on the distribution, as qualified ids (`<plugin>::<rule>`), space-separated. */
function distributionAcknowledgements(built: ReturnType<typeof buildApp>): string {
  return built.web.distribution.node.metadata
    .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
    .flatMap((entry) => Object.keys(entry.data as Json))
    .join(' ');
}

function apiOriginOf(template: Template): Json {
  return distributionConfig(template).Origins.find((origin: Json) => origin.CustomOriginConfig);
}

const CERTIFICATE_ARN = 'arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc';
const WEB_ACL_ARN =
  'arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/0f1e2d3c-aaaa-bbbb-cccc-123456789abc';

// The synths the tests share happen here, where a loaded machine gets the hook's longer timeout.
beforeAll(() => {
  webApp('dev');
  webApp('prod');
});

function distributionConfig(template: Template): Json {
  const [distribution] = Object.values(template.findResources('AWS::CloudFront::Distribution')) as Json[];
  return distribution?.Properties.DistributionConfig;
}

describe.each(['dev', 'prod'] as const)('the %s web stack', (stage) => {
  it('keeps the site in a private, encrypted bucket that only takes TLS requests and logs access', () => {
    const { template } = webApp(stage);
    template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 's3/' }),
    });
    for (const bucket of Object.values(template.findResources('AWS::S3::Bucket')) as Json[]) {
      expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(bucket.Properties.WebsiteConfiguration).toBeUndefined();
    }
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('lets only the distribution read the bucket, through an Origin Access Control', () => {
    const { template } = webApp(stage);
    template.resourceCountIs('AWS::CloudFront::OriginAccessControl', 1);
    template.hasResourceProperties('AWS::CloudFront::OriginAccessControl', {
      OriginAccessControlConfig: Match.objectLike({
        OriginAccessControlOriginType: 's3',
        SigningBehavior: 'always',
        SigningProtocol: 'sigv4',
      }),
    });
    template.resourceCountIs('AWS::CloudFront::CloudFrontOriginAccessIdentity', 0);
    const s3Origin = distributionConfig(template).Origins.find((origin: Json) => origin.S3OriginConfig);
    expect(s3Origin.OriginAccessControlId).toEqual({ 'Fn::GetAtt': [expect.any(String), 'Id'] });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudfront.amazonaws.com' },
            Action: 's3:GetObject',
            Condition: { StringEquals: { 'AWS:SourceArn': Match.anyValue() } },
          }),
        ]),
      },
    });
  });

  it('serves index.html at the root and for the routes of the app, over HTTPS, with security headers', () => {
    const { template } = webApp(stage);
    const config = distributionConfig(template);
    expect(config.DefaultRootObject).toBe('index.html');
    expect(config.CustomErrorResponses).toBeUndefined();
    expect(config.DefaultCacheBehavior.ViewerProtocolPolicy).toBe('redirect-to-https');
    expect(config.DefaultCacheBehavior.FunctionAssociations).toEqual([
      { EventType: 'viewer-request', FunctionARN: expect.anything() },
    ]);
    expect(config.Logging).toEqual(expect.objectContaining({ Prefix: 'cloudfront/' }));
    template.hasResourceProperties('AWS::CloudFront::ResponseHeadersPolicy', {
      ResponseHeadersPolicyConfig: Match.objectLike({
        SecurityHeadersConfig: Match.objectLike({
          // Joined with the buckets' names (see the connect-src test).
          ContentSecurityPolicy: { ContentSecurityPolicy: Match.anyValue(), Override: true },
          ContentTypeOptions: { Override: true },
          FrameOptions: { FrameOption: 'DENY', Override: true },
          StrictTransportSecurity: Match.objectLike({ AccessControlMaxAgeSec: 31_536_000 }),
        }),
      }),
    });
  });

  it('routes the API paths, uncached and with the viewer headers except Host, to the HTTP API', () => {
    const { template, built } = webApp(stage);
    const config = distributionConfig(template);
    const behaviors = config.CacheBehaviors as Json[];
    expect(behaviors.map((b) => b.PathPattern).sort()).toEqual([...API_PATH_PATTERNS].sort());
    const apiOrigin = config.Origins.find((origin: Json) => origin.CustomOriginConfig);
    expect(apiOrigin.CustomOriginConfig).toEqual(
      expect.objectContaining({ OriginProtocolPolicy: 'https-only', OriginSSLProtocols: ['TLSv1.2'] }),
    );
    // The host name is cut out of the stateless stack's API endpoint (an import of its export).
    expect(JSON.stringify(apiOrigin.DomainName)).toContain('Fn::ImportValue');
    expect(JSON.stringify(apiOrigin.DomainName)).toContain(built.stateless.stackName);
    for (const behavior of behaviors) {
      expect(behavior.TargetOriginId).toBe(apiOrigin.Id);
      expect(behavior.CachePolicyId).toBe(cloudfront.CachePolicy.CACHING_DISABLED.cachePolicyId);
      expect(behavior.OriginRequestPolicyId).toBe(
        cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER.originRequestPolicyId,
      );
      expect(behavior.AllowedMethods).toEqual(
        expect.arrayContaining(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
      );
      expect(behavior.ViewerProtocolPolicy).toBe('https-only');
    }
  });

  it('deploys the built UI with long caching for hashed assets only, and invalidates index.html', () => {
    const { template } = webApp(stage);
    const deployments = Object.values(template.findResources('Custom::CDKBucketDeployment')) as Json[];
    expect(deployments).toHaveLength(2);
    const assets = deployments.find((d) => d.Properties.Include?.includes('assets/*'));
    const pages = deployments.find((d) => d.Properties.Exclude?.includes('assets/*'));
    expect(assets?.Properties.SystemMetadata['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(pages?.Properties.SystemMetadata['cache-control']).toBe('no-cache');
    expect(pages?.Properties.DistributionPaths).toEqual(['/', '/index.html']);
    for (const deployment of deployments) expect(deployment.Properties.Prune).toBe(false);
  });

  it('lets the UI connect to its own origin and to the two buckets by name, not to any amazonaws.com host', () => {
    const { template, built } = webApp(stage);
    const policies = Object.values(
      template.findResources('AWS::CloudFront::ResponseHeadersPolicy'),
    ) as Json[];
    const site = policies.find(
      (policy) => policy.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy,
    ) as Json;
    const csp = JSON.stringify(
      site.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy,
    );
    expect(csp).not.toContain('*');
    expect(csp).toMatch(
      /^\{"ContentSecurityPolicy":\{"Fn::Join":\["",\["default-src 'self'; script-src 'self'/,
    );
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self' https://");
    // Each bucket's name is an import of what the stateful stack exports for it.
    const imports = [...csp.matchAll(/"Fn::ImportValue":"([^"]+)"/g)].map((match) => match[1]);
    const stateful = Template.fromStack(built.stateful).toJSON().Outputs as Json;
    const exported = (name: string | undefined) =>
      Object.values(stateful).find((output: Json) => output.Export?.Name === name)?.Value;
    const named = new Set(imports.map((name) => JSON.stringify(exported(name))));
    expect(named).toEqual(
      new Set(
        [built.stateful.modelsBucket, built.stateful.batchBucket].map((bucket) =>
          JSON.stringify({ Ref: built.stateful.getLogicalId(bucket.node.defaultChild as CfnElement) }),
        ),
      ),
    );
    // Both at the regional endpoint (what the SDK presigns) and the global one.
    expect(csp).toContain('".s3.",{"Ref":"AWS::Region"},".",{"Ref":"AWS::URLSuffix"}');
    expect(csp).toContain('".s3.",{"Ref":"AWS::URLSuffix"}');
  });

  it('invalidates index.html with a role that may invalidate this distribution only', () => {
    const { template } = webApp(stage);
    const [distributionId] = Object.keys(template.findResources('AWS::CloudFront::Distribution'));
    const statements = (Object.values(template.findResources('AWS::IAM::Policy')) as Json[]).flatMap(
      (policy) => policy.Properties.PolicyDocument.Statement as Json[],
    );
    const invalidations = statements.filter((statement) =>
      [statement.Action].flat().some((action: string) => action.startsWith('cloudfront:')),
    );
    expect(invalidations).toHaveLength(1);
    expect([invalidations[0]?.Action].flat().sort()).toEqual([
      'cloudfront:CreateInvalidation',
      'cloudfront:GetInvalidation',
    ]);
    expect(JSON.stringify(invalidations[0]?.Resource)).toContain(
      `":distribution/",{"Ref":"${distributionId}"}`,
    );
    // No statement of the stack is on every resource.
    for (const statement of statements) expect([statement.Resource].flat()).not.toContain('*');
  });

  it('has no unacknowledged cdk-nag finding', () => {
    expect(webApp(stage).nagFindings).toEqual([]);
  });
});

describe('the way to the API', () => {
  it('goes through CloudFront only: CloudFront adds the origin-verify secret, read at deploy time, to every API request', () => {
    const { template, built } = webApp('dev');
    const headers = apiOriginOf(template).OriginCustomHeaders as Json[];
    expect(headers).toHaveLength(1);
    const [header] = headers as [Json];
    expect(header.HeaderName).toBe(ORIGIN_VERIFY_HEADER);
    // A CloudFormation dynamic reference to the stateless stack's secret: the value itself is in no template.
    const [, [open, secretArn, close]] = header.HeaderValue['Fn::Join'] as [string, [string, Json, string]];
    expect(open).toBe('{{resolve:secretsmanager:');
    expect(close).toBe(':SecretString:current::}}');
    expect(secretArn['Fn::ImportValue']).toContain(built.stateless.stackName);
    expect(secretArn['Fn::ImportValue']).toContain('OriginVerifySecret');
    // Only the API origin gets it; the site bucket's origin is signed by its Origin Access Control.
    const s3Origin = distributionConfig(template).Origins.find((origin: Json) => origin.S3OriginConfig);
    expect(s3Origin.OriginCustomHeaders).toBeUndefined();
  });

  it('sends the version -c originVerifyVersionId names, so that a rotation reaches CloudFront', () => {
    const { template } = webApp('dev', { originVerifyVersionId: '6c9b1a2e-0000-4000-8000-000000000001' });
    const [header] = apiOriginOf(template).OriginCustomHeaders as [Json];
    const [, parts] = header.HeaderValue['Fn::Join'] as [string, string[]];
    expect(parts.at(-1)).toBe(':SecretString:current::6c9b1a2e-0000-4000-8000-000000000001}}');
  });
});

describe('the web ACL', () => {
  it('is not there by default, and cdk-nag is told why', () => {
    const { template, built } = webApp('dev');
    template.resourceCountIs('AWS::WAFv2::WebACL', 0);
    expect(distributionConfig(template).WebACLId).toBeUndefined();
    expect(distributionAcknowledgements(built)).toContain('AwsSolutions-CFR2');
  });

  it('-c waf=true attaches one with rate-based rules per address, answering 429, and lifts the acknowledgement', () => {
    const { template, built, nagFindings } = webApp('prod', { waf: 'true' });
    template.resourceCountIs('AWS::WAFv2::WebACL', 1);
    const [aclId, acl] = Object.entries(template.findResources('AWS::WAFv2::WebACL'))[0] as [string, Json];
    expect(acl.Properties).toMatchObject({ Scope: 'CLOUDFRONT', DefaultAction: { Allow: {} } });
    expect(distributionConfig(template).WebACLId).toEqual({ 'Fn::GetAtt': [aclId, 'Arn'] });
    const rules = acl.Properties.Rules as Json[];
    for (const rule of rules) {
      expect(rule.Action, rule.Name).toEqual({ Block: { CustomResponse: { ResponseCode: 429 } } });
      expect(rule.Statement.RateBasedStatement, rule.Name).toMatchObject({
        AggregateKeyType: 'IP',
        EvaluationWindowSec: 300,
      });
      expect(rule.VisibilityConfig, rule.Name).toMatchObject({ CloudWatchMetricsEnabled: true });
    }
    const signIns = rules.find((rule) => rule.Name === 'SignInsAndSignUpsPerAddress') as Json;
    const everything = rules.find((rule) => rule.Name === 'RequestsPerAddress') as Json;
    expect(signIns.Priority).toBeLessThan(everything.Priority);
    expect(signIns.Statement.RateBasedStatement.Limit).toBe(WAF_SIGN_INS_PER_ADDRESS);
    expect(everything.Statement.RateBasedStatement.Limit).toBe(WAF_REQUESTS_PER_ADDRESS);
    expect(everything.Statement.RateBasedStatement.ScopeDownStatement).toBeUndefined();
    // Scoped down to POST /v1/tokens and POST /v1/users.
    const scope = JSON.stringify(signIns.Statement.RateBasedStatement.ScopeDownStatement);
    for (const value of [
      '"Method":{}',
      '"SearchString":"POST"',
      '"SearchString":"/v1/tokens"',
      '"SearchString":"/v1/users"',
    ])
      expect(scope).toContain(value);
    // CloudFront web ACLs exist in us-east-1 only: CloudFormation checks the region before creating anything.
    const rulesSection = template.toJSON().Rules as Json;
    expect(rulesSection.WebAclInUsEast1.Assertions).toEqual([
      {
        Assert: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] },
        AssertDescription: expect.stringContaining('-c webAclArn='),
      },
    ]);
    expect(distributionAcknowledgements(built)).not.toContain('AwsSolutions-CFR2');
    expect(nagFindings).toEqual([]);
  });

  it('refuses -c waf=true in a region other than us-east-1', () => {
    const app = new App({ outdir: tempDir('waf-region') });
    const apiStack = new Stack(app, 'Api', { env: { region: 'eu-west-1' } });
    const api = new apigwv2.HttpApi(apiStack, 'HttpApi');
    const originVerifySecret = new secretsmanager.Secret(apiStack, 'OriginVerify');
    expect(
      () =>
        new WebStack(app, 'Web', {
          env: { region: 'eu-west-1' },
          settings: stageSettings('dev'),
          api,
          originVerifySecret,
          presignedBuckets: [],
          edge: { waf: true },
          webRoot: tempDir('empty-dist'),
        }),
    ).toThrow(/us-east-1 only.*-c webAclArn=/);
  });

  it('-c webAclArn attaches an existing one from any region, with no acknowledgement left', () => {
    const { template, built, nagFindings } = webApp('dev', { webAclArn: WEB_ACL_ARN });
    template.resourceCountIs('AWS::WAFv2::WebACL', 0);
    expect(distributionConfig(template).WebACLId).toBe(WEB_ACL_ARN);
    expect(template.toJSON().Rules?.WebAclInUsEast1).toBeUndefined();
    expect(distributionAcknowledgements(built)).not.toContain('AwsSolutions-CFR2');
    expect(nagFindings).toEqual([]);
  });

  it('refuses a regional web ACL, and both flags at once', () => {
    expect(() =>
      webApp('dev', { webAclArn: 'arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/edge/1234' }),
    ).toThrow(/not the ARN of a CloudFront web ACL/);
    expect(() => webApp('dev', { waf: 'true', webAclArn: WEB_ACL_ARN })).toThrow(/only one of them/);
    expect(() => webApp('dev', { waf: 'yes' })).toThrow(/-c waf=yes: use true or false/);
  });
});

describe('viewer TLS', () => {
  it("is CloudFront's default certificate without a domain (TLSv1 and later), which cdk-nag is told", () => {
    const { template, built } = webApp('prod');
    expect(distributionConfig(template).ViewerCertificate).toBeUndefined();
    expect(distributionConfig(template).Aliases).toBeUndefined();
    expect(distributionAcknowledgements(built)).toContain('AwsSolutions-CFR4');
  });

  it('is TLSv1.2_2021 with -c domainName and -c certificateArn, and the URLs name the domain', () => {
    const { template, built, nagFindings } = webApp('prod', {
      domainName: 'app.example.com',
      certificateArn: CERTIFICATE_ARN,
    });
    const config = distributionConfig(template);
    expect(config.Aliases).toEqual(['app.example.com']);
    expect(config.ViewerCertificate).toEqual({
      AcmCertificateArn: CERTIFICATE_ARN,
      MinimumProtocolVersion: 'TLSv1.2_2021',
      SslSupportMethod: 'sni-only',
    });
    const outputs = template.toJSON().Outputs as Json;
    expect(outputs.WebUrl.Value).toBe('https://app.example.com');
    expect(outputs.DistributionDomainName.Value).toEqual({
      'Fn::GetAtt': [expect.any(String), 'DomainName'],
    });
    expect(distributionAcknowledgements(built)).not.toContain('AwsSolutions-CFR4');
    expect(nagFindings).toEqual([]);
  });

  it('refuses a domain without a certificate, or a certificate from another region', () => {
    expect(() => webApp('dev', { domainName: 'app.example.com' })).toThrow(/go together/);
    expect(() =>
      webApp('dev', {
        domainName: 'app.example.com',
        certificateArn: CERTIFICATE_ARN.replace('us-east-1', 'eu-west-1'),
      }),
    ).toThrow(/us-east-1 only/);
  });
});

describe('the app-route rewrite function', () => {
  const rewrite = (uri: string): string => {
    const handler = runInNewContext(`${SPA_REWRITE_FUNCTION}; handler`) as (event: Json) => Json;
    return handler({ request: { uri } }).uri;
  };

  it('sends the routes of the app to index.html', () => {
    expect(rewrite('/')).toBe('/index.html');
    expect(rewrite('/models')).toBe('/index.html');
    expect(rewrite('/models/mdl_01ABC')).toBe('/index.html');
    expect(rewrite('/admin/models/')).toBe('/index.html');
  });

  it('leaves files alone', () => {
    expect(rewrite('/assets/index-AbC123.js')).toBe('/assets/index-AbC123.js');
    expect(rewrite('/favicon.svg')).toBe('/favicon.svg');
  });
});

describe('synthesis without a built UI', () => {
  const stackWithoutUi = (context: Record<string, unknown>) => {
    const app = new App({ context, outdir: tempDir('no-ui') });
    const apiStack = new Stack(app, 'Api');
    const api = new apigwv2.HttpApi(apiStack, 'HttpApi');
    const originVerifySecret = new secretsmanager.Secret(apiStack, 'OriginVerify');
    return () =>
      new WebStack(app, 'Web', {
        settings: stageSettings('dev'),
        api,
        originVerifySecret,
        presignedBuckets: [],
        webRoot: tempDir('empty-dist'),
      });
  };

  it('fails with a message that says to run npm run build:web', () => {
    expect(stackWithoutUi({})).toThrow(/web UI is not built.*npm run build:web/);
  });

  it('uses a placeholder page when bundling is skipped, as in these tests', () => {
    const web = stackWithoutUi({ 'aws:cdk:bundling-stacks': [] })();
    Template.fromStack(web).resourceCountIs('Custom::CDKBucketDeployment', 2);
  });
});
