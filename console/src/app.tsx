import { useEffect, useRef, useState } from 'preact/hooks';
import { api, hasSession, whenUnauthorized } from './api';
import { ApiKeysPage } from './pages/api-keys';
import { ConnectorFormPage } from './pages/connector-form';
import { ConnectorsPage } from './pages/connectors';
import { LoginPage } from './pages/login';
import { OverviewPage } from './pages/overview';
import { href, navigate, useRoute, type Route } from './router';
import type { Me } from './types';

const TITLES: Record<Route['page'], string> = {
  overview: 'Overview',
  connectors: 'Connectors',
  'connector-new': 'New connector',
  'connector-edit': 'Edit connector',
  'api-keys': 'API keys',
  'not-found': 'Page not found',
};

type Session = { state: 'checking' } | { state: 'out'; notice?: string } | { state: 'in'; me: Me };

/** The console: the login page, or the signed-in layout with the page of the current path. */
export function App() {
  const [session, setSession] = useState<Session>(() => (hasSession() ? { state: 'checking' } : { state: 'out' }));
  const route = useRoute();

  useEffect(() => {
    whenUnauthorized(() => setSession({ state: 'out', notice: 'Your session has ended; log in again.' }));
    if (session.state === 'checking') {
      api<Me>('GET', '/me').then(
        (me) => setSession({ state: 'in', me }),
        () => setSession({ state: 'out' }),
      );
    }
    // Once, at start.
  }, []);

  useEffect(() => {
    document.title = session.state === 'in' ? `${TITLES[route.page]} - Latchkey` : 'Log in - Latchkey';
  }, [route, session.state]);

  if (session.state === 'checking') return <p class="loading">Loading…</p>;
  if (session.state === 'out') return <LoginPage notice={session.notice} onLoggedIn={(me) => setSession({ state: 'in', me })} />;
  return <Layout me={session.me} route={route} onLoggedOut={() => setSession({ state: 'out', notice: 'You are logged out.' })} />;
}

function Layout({ me, route, onLoggedOut }: { me: Me; route: Route; onLoggedOut: () => void }) {
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  const [loggingOut, setLoggingOut] = useState(false);

  // After a navigation, focus goes to the new page (screen readers read its heading).
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus();
  }, [route]);

  const logout = async () => {
    setLoggingOut(true);
    try {
      await api('DELETE', '/sessions/current');
    } finally {
      setLoggingOut(false);
      history.replaceState(null, '', href('/'));
      onLoggedOut();
    }
  };

  const section = route.page.startsWith('connector') ? 'connectors' : route.page;
  const link = (path: string, page: string, label: string) => (
    <li>
      <a href={href(path)} aria-current={section === page ? 'page' : undefined}>
        {label}
      </a>
    </li>
  );

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href('/')}>
          Latchkey
        </a>
        <nav aria-label="Main">
          <ul>
            {link('/', 'overview', 'Overview')}
            {link('/connectors', 'connectors', 'Connectors')}
            {link('/api-keys', 'api-keys', 'API keys')}
          </ul>
        </nav>
        <div class="who">
          <span>
            <strong>{me.user.username}</strong> in tenant <strong>{me.tenant.name}</strong>
          </span>
          <button type="button" class="secondary" onClick={logout} disabled={loggingOut}>
            {loggingOut ? 'Logging out…' : 'Log out'}
          </button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Page me={me} route={route} />
      </main>
    </>
  );
}

function Page({ me, route }: { me: Me; route: Route }) {
  switch (route.page) {
    case 'overview':
      return <OverviewPage me={me} />;
    case 'connectors':
      return <ConnectorsPage me={me} />;
    case 'connector-new':
      return <ConnectorFormPage onSaved={() => navigate('/connectors')} />;
    case 'connector-edit':
      return <ConnectorFormPage id={route.id} onSaved={() => navigate('/connectors')} />;
    case 'api-keys':
      return <ApiKeysPage me={me} />;
    default:
      return (
        <>
          <h1>Page not found</h1>
          <p>
            There is no console page at this address. Go to the <a href={href('/')}>overview</a>.
          </p>
        </>
      );
  }
}
