/**
 * The web UI: web/dist in a private bucket behind a CloudFront distribution, which also routes the
 * API's paths to the HTTP API, so the UI and the API share one origin (no CORS between them).
 * Static files are cached at the edge; API requests are never cached and reach the API with every
 * viewer header except Host. Deep links of the single-page app are rewritten to /index.html by a
 * CloudFront function on the default behaviour only, so that the API's own 403s and 404s (problem+json)
 * are never replaced by the app's page, as a distribution-wide error response would do.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  CfnOutput,
  DefaultStackSynthesizer,
  Duration,
  Fn,
  Stack,
  type StackProps,
  Validations,
} from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import type { Construct, IConstruct } from 'constructs';
import { REPO_ROOT } from './paths.ts';
import type { StageSettings } from './stage.ts';

/** Where `npm run build:web` writes the UI. */
export const WEB_DIST = join(REPO_ROOT, 'web', 'dist');

/** The paths that belong to the API; everything else is the UI. The local gateway routes the same way. */
export const API_PATH_PATTERNS = ['/v1/*', '/openapi.json', '/docs*', '/.well-known/*'] as const;

/** Vite puts content-hashed files under assets/: they never change, so browsers may keep them a year. */
export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';
/** index.html and the other unhashed files are revalidated on every load, so a deployment shows at once. */
export const REVALIDATE_CACHE_CONTROL = 'no-cache';

/**
 * The UI's Content-Security-Policy: only its own scripts and styles (no inline code), API calls to
 * its own origin, and uploads and downloads through presigned S3 URLs (`connectSources`).
 */
export function contentSecurityPolicy(connectSources: string[], { upgradeInsecureRequests = true } = {}) {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${["'self'", ...connectSources].join(' ')}`,
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    ...(upgradeInsecureRequests ? ['upgrade-insecure-requests'] : []),
  ].join('; ');
}

/**
 * Presigned S3 URLs (virtual-hosted style, any region) that the UI PUTs files to and downloads from.
 * The browser sends those uploads cross-origin, so the buckets' CORS rules (the stateful stack's
 * `corsOrigins`) must name this distribution's origin: `cdk deploy -c corsOrigins=https://<WebUrl>`.
 */
const S3_PRESIGNED_ORIGINS = ['https://*.amazonaws.com'];

/**
 * Rewrites a path without a file extension (a route of the app, e.g. /models/iris) to /index.html.
 * Runs on viewer requests of the default behaviour only; API paths have behaviours of their own.
 */
export const SPA_REWRITE_FUNCTION = `function handler(event) {
  var request = event.request;
  var last = request.uri.split('/').pop();
  if (last.indexOf('.') === -1) request.uri = '/index.html';
  return request;
}`;

export interface WebStackProps extends StackProps {
  settings: StageSettings;
  /** The HTTP API that answers the API paths. */
  api: apigwv2.HttpApi;
  /** The built UI (default web/dist). */
  webRoot?: string;
}

export class WebStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly logsBucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;

  constructor(scope: Construct, id: string, props: WebStackProps) {
    super(scope, id, props);
    const { settings } = props;
    const production = settings.stage === 'prod';
    const webRoot = props.webRoot ?? WEB_DIST;

    // CloudFront's standard logs are delivered with ACLs, so this bucket keeps them enabled (owner preferred).
    this.logsBucket = new s3.Bucket(this, 'LogsBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(settings.logRetentionDays) }],
      removalPolicy: settings.removalPolicy,
      autoDeleteObjects: !production,
    });
    Validations.of(this.logsBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        "This is the web stack's log bucket itself (S3 and CloudFront logs); logging it into itself would loop.",
    });

    this.bucket = new s3.Bucket(this, 'SiteBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.logsBucket,
      serverAccessLogsPrefix: 's3/',
      removalPolicy: settings.removalPolicy,
      autoDeleteObjects: !production,
    });

    const apiOrigin = new origins.HttpOrigin(apiDomainName(props.api), {
      protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
    });

    const strictTransport = {
      accessControlMaxAge: Duration.days(365),
      includeSubdomains: true,
      override: true,
    };
    const siteHeaders = new cloudfront.ResponseHeadersPolicy(this, 'SiteHeaders', {
      comment: 'Security headers of the web UI',
      securityHeadersBehavior: {
        contentSecurityPolicy: {
          contentSecurityPolicy: contentSecurityPolicy(S3_PRESIGNED_ORIGINS),
          override: true,
        },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: {
          referrerPolicy: cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
          override: true,
        },
        strictTransportSecurity: strictTransport,
      },
    });
    // The API sets its own content type and caching; Swagger UI at /docs needs its own script policy.
    const apiHeaders = new cloudfront.ResponseHeadersPolicy(this, 'ApiHeaders', {
      comment: 'Security headers of the API paths',
      securityHeadersBehavior: {
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER, override: true },
        strictTransportSecurity: strictTransport,
      },
    });

    const apiBehavior: cloudfront.BehaviorOptions = {
      origin: apiOrigin,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
      cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
      // Authorization, Content-Type, Idempotency-Key and the query string reach the API; Host would
      // not match the API's own domain, so CloudFront sends the origin's.
      originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
      responseHeadersPolicy: apiHeaders,
      compress: true,
    };

    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: `Credit predictions web UI and API (${settings.stage})`,
      defaultRootObject: 'index.html',
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      enableLogging: true,
      logBucket: this.logsBucket,
      logFilePrefix: 'cloudfront/',
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: siteHeaders,
        compress: true,
        functionAssociations: [
          {
            eventType: cloudfront.FunctionEventType.VIEWER_REQUEST,
            function: new cloudfront.Function(this, 'SpaRewrite', {
              comment: 'Serves index.html for the routes of the single-page app',
              code: cloudfront.FunctionCode.fromInline(SPA_REWRITE_FUNCTION),
              runtime: cloudfront.FunctionRuntime.JS_2_0,
            }),
          },
        ],
      },
      additionalBehaviors: Object.fromEntries(API_PATH_PATTERNS.map((pattern) => [pattern, apiBehavior])),
    });
    this.acknowledgeDistributionFindings(this.distribution);

    this.deploySite(webRoot);

    new CfnOutput(this, 'WebUrl', {
      value: `https://${this.distribution.distributionDomainName}`,
      description: 'The web UI, with the API under /v1 on the same origin',
    });
  }

  /**
   * Two deployments: the hashed assets with a year's caching, then everything else revalidated on
   * each load. Neither prunes, so the assets of the previous version stay for pages still open.
   */
  private deploySite(webRoot: string) {
    const sources = siteSources(this, webRoot);
    const assets = new s3deploy.BucketDeployment(this, 'DeployAssets', {
      sources,
      destinationBucket: this.bucket,
      include: ['assets/*'],
      exclude: ['*'],
      cacheControl: [s3deploy.CacheControl.fromString(IMMUTABLE_CACHE_CONTROL)],
      prune: false,
      memoryLimit: 512,
    });
    const pages = new s3deploy.BucketDeployment(this, 'DeployPages', {
      sources,
      destinationBucket: this.bucket,
      exclude: ['assets/*'],
      cacheControl: [s3deploy.CacheControl.fromString(REVALIDATE_CACHE_CONTROL)],
      prune: false,
      memoryLimit: 512,
      distribution: this.distribution,
      distributionPaths: ['/', '/index.html'],
    });
    // index.html must not name assets that are not uploaded yet.
    pages.node.addDependency(assets);
    this.acknowledgeDeploymentFindings();
  }

  private acknowledgeDistributionFindings(distribution: cloudfront.Distribution) {
    const acknowledge = (id: string, reason: string) =>
      Validations.of(distribution).acknowledge({ id, reason });
    acknowledge(
      'AwsSolutions-CFR1',
      'The service is offered worldwide: no country is excluded, so a geo restriction would only list every country.',
    );
    acknowledge(
      'AwsSolutions-CFR2',
      'No AWS WAF web ACL yet: the API throttles per stage in API Gateway and sign-ins per source, and a ' +
        'web ACL (a us-east-1 resource billed per request) is left to the operator to attach for their threat model.',
    );
    acknowledge(
      'AwsSolutions-CFR4',
      'The distribution uses the default *.cloudfront.net certificate, with which CloudFront always allows ' +
        'TLSv1 for viewers whatever minimumProtocolVersion says; a custom domain with its ACM certificate would ' +
        'enforce TLS 1.2 (TLS_V1_2_2021 is already set).',
    );
  }

  /**
   * BucketDeployment runs a CDK-provided singleton function at deploy time; its findings are
   * acknowledged on that function only, one wildcard at a time.
   */
  private acknowledgeDeploymentFindings() {
    const qualifier = String(
      this.node.tryGetContext('@aws-cdk/core:bootstrapQualifier') ??
        DefaultStackSynthesizer.DEFAULT_QUALIFIER,
    );
    const assetObjects = `arn:<AWS::Partition>:s3:::cdk-${qualifier}-assets-<AWS::AccountId>-<AWS::Region>/*`;
    const siteObjects = `${nagReference(this, this.bucket.bucketArn)}/*`;
    const wildcard = (finding: string) => `AwsSolutions-IAM5[${finding}]`;
    for (const child of this.node.children) {
      if (!child.node.id.startsWith('Custom::CDKBucketDeployment')) continue;
      acknowledgeOn(child, {
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
          "CDK's BucketDeployment function (it copies web/dist into the site bucket at deploy time) uses the " +
          'AWS-maintained AWSLambdaBasicExecutionRole, which only allows writing its CloudWatch logs.',
        'AwsSolutions-L1':
          "The runtime of CDK's BucketDeployment function is chosen and tested by aws-cdk-lib (it bundles the " +
          'AWS CLI in a layer for that runtime); it moves with aws-cdk-lib upgrades, not with this code.',
        [wildcard('Action::s3:GetObject*')]:
          'BucketDeployment reads the zipped UI from the CDK asset bucket (GetObject and its read-only variants) ' +
          'and reads back the site bucket while syncing; no write action is in this wildcard.',
        [wildcard('Action::s3:GetBucket*')]:
          'Read-only bucket metadata (GetBucketLocation...) that the AWS CLI sync in BucketDeployment needs on ' +
          'the asset and site buckets; nothing in it changes a bucket.',
        [wildcard('Action::s3:List*')]:
          'The AWS CLI sync in BucketDeployment lists the site bucket to compare it with the new files; listing ' +
          'is limited to the asset and site buckets.',
        [wildcard('Action::s3:Abort*')]:
          'Lets BucketDeployment abandon a failed multipart upload of a large file into the site bucket cleanly; ' +
          'limited to that bucket.',
        [wildcard('Action::s3:DeleteObject*')]:
          'Granted by BucketDeployment for pruning; both deployments here set prune: false, and the grant covers ' +
          'only the site bucket, whose contents are entirely this deployment.',
        [wildcard(`Resource::${assetObjects}`)]:
          'The CDK bootstrap asset bucket of this account and region, where the zipped UI is staged; its object ' +
          'keys are content hashes known only at synth time.',
        [wildcard(`Resource::${siteObjects}`)]:
          'The objects of the site bucket: the file names of the built UI (hashed asset names) change with every ' +
          'build, so they cannot be listed in the policy.',
        [wildcard('Resource::*')]:
          'cloudfront:CreateInvalidation and GetInvalidation, which BucketDeployment uses to invalidate ' +
          'index.html after a deployment; CloudFront invalidation actions support no resource-level scoping here.',
      });
    }
  }
}

function acknowledgeOn(construct: IConstruct, findings: Record<string, string>) {
  for (const [id, reason] of Object.entries(findings)) Validations.of(construct).acknowledge({ id, reason });
}

/** How cdk-nag names an attribute of a resource in this stack: `<LogicalId.Attribute>`. */
function nagReference(stack: Stack, attribute: string): string {
  const resolved: unknown = stack.resolve(attribute);
  if (
    resolved &&
    typeof resolved === 'object' &&
    'Fn::GetAtt' in resolved &&
    Array.isArray(resolved['Fn::GetAtt'])
  )
    return `<${resolved['Fn::GetAtt'].join('.')}>`;
  throw new Error(`Cannot tell how cdk-nag names ${JSON.stringify(resolved)}.`);
}

/** The API's host name, `<apiId>.execute-api.<region>.amazonaws.com`, taken from its endpoint URL. */
function apiDomainName(api: apigwv2.HttpApi): string {
  return Fn.select(2, Fn.split('/', api.apiEndpoint));
}

/**
 * The files to deploy. Synthesis needs the built UI; tests that skip bundling (the
 * `aws:cdk:bundling-stacks` context set to []) get a placeholder page instead.
 */
function siteSources(stack: Stack, webRoot: string): s3deploy.ISource[] {
  if (existsSync(join(webRoot, 'index.html'))) return [s3deploy.Source.asset(webRoot)];
  if (!stack.bundlingRequired)
    return [
      s3deploy.Source.data('index.html', '<!doctype html><title>Credit Predictions</title><p>Placeholder.'),
    ];
  throw new Error(
    `The web UI is not built: ${join(webRoot, 'index.html')} is missing. Run \`npm run build:web\` before \`cdk synth\` or \`cdk deploy\`.`,
  );
}
