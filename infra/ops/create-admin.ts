/**
 * `npm run admin:create -- --table <TableName> [--region eu-west-1] [--stage prod] --email ops@example.com`
 *
 * Creates the first admin of a deployed stack (or makes an existing user admin), with the AWS
 * credentials of whoever runs it. The password is read from standard input (typed without echo,
 * or piped from a secret manager), never from an environment variable or the command line.
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    table: { type: 'string' },
    region: { type: 'string' },
    stage: { type: 'string', default: 'prod' },
    email: { type: 'string' },
  },
});
if (!values.table || !values.email) {
  console.error(
    'usage: npm run admin:create -- --table <TableName> --email <email> [--region <region>] [--stage prod|dev]',
  );
  console.error(
    'The table name is the stateful stack output "TableName". The password is read from standard input.',
  );
  process.exit(2);
}

async function readPassword(): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    let text = '';
    for await (const chunk of input) text += chunk;
    return text.replace(/\r?\n$/, '');
  }
  process.stdout.write('Password for the admin (not echoed): ');
  input.setRawMode(true);
  let password = '';
  for await (const chunk of input) {
    for (const char of String(chunk)) {
      if (char === '\r' || char === '\n') {
        input.setRawMode(false);
        process.stdout.write('\n');
        return password;
      }
      if (char === '\u0003') process.exit(130);
      password = char === '\u007f' ? password.slice(0, -1) : password + char;
    }
  }
  return password;
}

const password = await readPassword();
if (password.length < 8) {
  console.error('The password must be at least 8 characters.');
  process.exit(2);
}
// The functions' own configuration, pointed at the deployed table, so the admin is made by the
// same use case (and the same password hashing) as every other user.
Object.assign(process.env, {
  STAGE: values.stage,
  TABLE_NAME: values.table,
  ...(values.region ? { AWS_REGION: values.region } : {}),
});
const { services } = await import('../../shared/app/services.ts');
const admin = await services().users.ensureAdmin(values.email.trim().toLowerCase(), password);
console.log(`Admin ready: ${admin.email} (${admin.id})`);
