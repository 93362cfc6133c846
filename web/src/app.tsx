/** The shell: header with navigation and the signed-in user, the routes, and the session's life cycle. */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, type SessionEnd, session, toApiError } from './api.ts';
import { Loading, ProblemAlert } from './components/ui.tsx';
import { credits } from './format.ts';
import { AccountPage } from './pages/account.tsx';
import { AdminPage } from './pages/admin.tsx';
import { RegisterPage, SignInPage } from './pages/auth.tsx';
import { BatchesPage } from './pages/batches.tsx';
import { HistoryPage } from './pages/history.tsx';
import { ModelPage, ModelsPage } from './pages/models.tsx';
import { NotFoundPage } from './pages/not-found.tsx';
import { UsagePage } from './pages/usage.tsx';
import { Link, match, navigate, useLocation } from './router.ts';
import { clearMe, loadMe, useMe } from './state.ts';

type Phase = 'checking' | 'signed-in' | 'signed-out' | 'unreachable';

const publicPaths = new Set(['/sign-in', '/register']);

export function App() {
  const location = useLocation();
  const me = useMe();
  const [phase, setPhase] = useState<Phase>(session.active ? 'checking' : 'signed-out');
  const [startError, setStartError] = useState<ApiError | null>(null);
  const [ended, setEnded] = useState<SessionEnd | undefined>(undefined);

  const start = () => {
    if (!session.active) {
      setPhase('signed-out');
      return;
    }
    setPhase('checking');
    loadMe().then(
      () => setPhase('signed-in'),
      (error: unknown) => {
        const problem = toApiError(error);
        if (problem.status === 401) setPhase('signed-out');
        else {
          setStartError(problem);
          setPhase('unreachable');
        }
      },
    );
  };

  useEffect(() => {
    start();
    return session.onChange((signedIn, reason) => {
      if (signedIn) return;
      clearMe();
      setPhase('signed-out');
      setEnded(reason);
    });
  }, []);

  // Signed-out visitors go to the sign-in page, remembering where they wanted to go.
  useEffect(() => {
    if (phase === 'signed-out' && !publicPaths.has(location.path)) {
      const next = location.path === '/' ? '' : `?next=${encodeURIComponent(location.path)}`;
      navigate(`/sign-in${next}`, { replace: true });
    }
    if (phase === 'signed-in' && location.path === '/') navigate('/models', { replace: true });
  }, [phase, location.path]);

  const onSignedIn = async () => {
    await loadMe();
    setEnded(undefined);
    setPhase('signed-in');
    const next = location.query.get('next');
    navigate(next?.startsWith('/') && !next.startsWith('//') ? next : '/models', { replace: true });
  };

  let content: ComponentChildren;
  if (phase === 'checking') content = <Loading label="Signing you in…" />;
  else if (phase === 'unreachable')
    content = (
      <ProblemAlert error={startError}>
        <button type="button" class="button" onClick={start}>
          Try again
        </button>
      </ProblemAlert>
    );
  else if (phase === 'signed-out' || !me) {
    if (location.path === '/register') content = <RegisterPage onSignedIn={onSignedIn} />;
    else content = <SignInPage onSignedIn={onSignedIn} ended={ended} />;
  } else content = <Routes path={location.path} isAdmin={me.role === 'admin'} />;

  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <Header path={location.path} />
      <main id="main" tabIndex={-1}>
        {content}
      </main>
      <footer class="site-footer">
        <p>
          Credit Predictions · <a href="/docs">API documentation</a> · <a href="/openapi.json">OpenAPI</a>
        </p>
      </footer>
    </>
  );
}

function Routes({ path, isAdmin }: { path: string; isAdmin: boolean }) {
  if (path === '/models') return <ModelsPage />;
  const model = match('/models/:ref', path);
  if (model?.ref) return <ModelPage modelRef={model.ref} />;
  if (path === '/history') return <HistoryPage />;
  if (path === '/batches') return <BatchesPage />;
  if (path === '/usage') return <UsagePage />;
  if (path === '/account') return <AccountPage />;
  if (path === '/sign-in' || path === '/register' || path === '/') return <Loading />;
  const admin = match('/admin/:section', path) ?? (path === '/admin' ? { section: 'models' } : null);
  if (admin) {
    if (!isAdmin) return <NotFoundPage />;
    return <AdminPage section={admin.section ?? 'models'} />;
  }
  return <NotFoundPage />;
}

const navItems = [
  { href: '/models', label: 'Models' },
  { href: '/history', label: 'History' },
  { href: '/batches', label: 'Batches' },
  { href: '/usage', label: 'Usage' },
  { href: '/account', label: 'Account' },
];

function Header({ path }: { path: string }) {
  const me = useMe();
  const [signingOut, setSigningOut] = useState(false);
  const items = me?.role === 'admin' ? [...navItems, { href: '/admin', label: 'Admin' }] : navItems;
  const signOut = async () => {
    setSigningOut(true);
    try {
      await session.signOut();
    } finally {
      setSigningOut(false);
      navigate('/sign-in', { replace: true });
    }
  };
  return (
    <header class="site-header">
      <div class="site-header-inner">
        <Link href={me ? '/models' : '/sign-in'} class="brand">
          <img src="/favicon.svg" alt="" width="28" height="28" />
          <span>Credit Predictions</span>
        </Link>
        {me && (
          <nav aria-label="Main">
            <ul class="nav-list">
              {items.map((item) => {
                const current = path === item.href || path.startsWith(`${item.href}/`);
                return (
                  <li key={item.href}>
                    <Link href={item.href} aria-current={current ? 'page' : undefined}>
                      {item.label}
                    </Link>
                  </li>
                );
              })}
            </ul>
          </nav>
        )}
        {me && (
          <div class="user-box">
            <span class="user-email" title={me.email}>
              {me.email}
            </span>
            {me.role === 'admin' && <span class="badge">admin</span>}
            <Link href="/account" class="balance" aria-label={`Balance: ${credits(me.balance)}`}>
              <span data-testid="header-balance">{credits(me.balance)}</span>
            </Link>
            <button
              type="button"
              class="button button--small button--secondary"
              onClick={signOut}
              disabled={signingOut}
            >
              Sign out
            </button>
          </div>
        )}
      </div>
    </header>
  );
}
