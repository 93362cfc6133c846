/** Sign-in and registration. */
import { useState } from 'preact/hooks';
import { type SessionEnd, session } from '../api.ts';
import { Notice, PageHeading, ProblemAlert, TextField, useSubmit } from '../components/ui.tsx';
import { Link } from '../router.ts';

const endedMessages: Record<SessionEnd, string> = {
  'signed-out': 'You have signed out.',
  elsewhere: 'You signed out in another tab.',
  expired: 'Your session has ended. Please sign in again.',
};

export function SignInPage({ onSignedIn, ended }: { onSignedIn: () => Promise<void>; ended?: SessionEnd }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, submit } = useSubmit(async () => {
    await session.signIn(email.trim(), password);
    await onSignedIn();
  });
  const fields = error?.fieldErrors ?? {};

  return (
    <section class="auth-card">
      <PageHeading title="Sign in" />
      {ended && <Notice>{endedMessages[ended]}</Notice>}
      <form onSubmit={submit} noValidate>
        <ProblemAlert error={error} fields={['email', 'password']} />
        <TextField
          label="Email"
          type="email"
          name="email"
          autoComplete="username"
          required
          value={email}
          onValue={setEmail}
          error={fields.email}
        />
        <TextField
          label="Password"
          type="password"
          name="password"
          autoComplete="current-password"
          required
          value={password}
          onValue={setPassword}
          error={fields.password}
        />
        <button type="submit" class="button button--block" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p class="auth-switch">
        New here? <Link href="/register">Create an account</Link>
      </p>
    </section>
  );
}

export function RegisterPage({ onSignedIn }: { onSignedIn: () => Promise<void> }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, submit } = useSubmit(async () => {
    await session.register(email.trim(), password);
    await session.signIn(email.trim(), password);
    await onSignedIn();
  });
  const fields = error?.fieldErrors ?? {};

  return (
    <section class="auth-card">
      <PageHeading title="Create an account" />
      <form onSubmit={submit} noValidate>
        <ProblemAlert error={error} fields={['email', 'password']} />
        <TextField
          label="Email"
          type="email"
          name="email"
          autoComplete="email"
          required
          value={email}
          onValue={setEmail}
          error={fields.email}
        />
        <TextField
          label="Password"
          type="password"
          name="password"
          autoComplete="new-password"
          required
          minLength={8}
          hint="At least 8 characters."
          value={password}
          onValue={setPassword}
          error={fields.password}
        />
        <button type="submit" class="button button--block" disabled={busy}>
          {busy ? 'Creating your account…' : 'Create account'}
        </button>
      </form>
      <p class="auth-switch">
        Already have an account? <Link href="/sign-in">Sign in</Link>
      </p>
    </section>
  );
}
