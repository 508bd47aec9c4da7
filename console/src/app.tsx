import { useEffect, useRef, useState } from 'preact/hooks';
import { api, hasSession, whenUnauthorized } from './api';
import { ApiKeysPage } from './pages/api-keys';
import { AuditPage } from './pages/audit';
import { ConnectionsPage } from './pages/connections';
import { GroupsPage } from './pages/groups';
import { RolesPage } from './pages/roles';
import { SettingsPage } from './pages/settings';
import { UsersPage } from './pages/users';
import { TasksPage } from './pages/tasks';
import { WebhooksPage } from './pages/webhooks';
import { ConnectorFormPage } from './pages/connector-form';
import { ConnectorsPage } from './pages/connectors';
import { LoginPage } from './pages/login';
import { OverviewPage } from './pages/overview';
import { href, navigate, replace, useRoute, type Route } from './router';
import type { Me, Permission, SwitchTo } from './types';

const TITLES: Record<Route['page'], string> = {
  overview: 'Overview',
  connectors: 'Connectors',
  'connector-new': 'New connector',
  'connector-edit': 'Edit connector',
  'api-keys': 'API keys',
  connections: 'Connections',
  users: 'Users',
  groups: 'Groups',
  roles: 'Roles',
  webhooks: 'Webhooks',
  tasks: 'Tasks',
  audit: 'Audit log',
  settings: 'Settings',
  'not-found': 'Page not found',
};

type Session = { state: 'checking' } | { state: 'out'; notice?: string; switchTo?: SwitchTo } | { state: 'in'; me: Me };

const SWITCH_NOTICE = 'A session belongs to one tenant: log in to the other tenant with your user there.';

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
  if (session.state === 'out') return <LoginPage notice={session.notice} switchTo={session.switchTo} onLoggedIn={(me) => setSession({ state: 'in', me })} />;
  return (
    <Layout
      me={session.me}
      route={route}
      onLoggedOut={(switchTo) => setSession(switchTo ? { state: 'out', notice: SWITCH_NOTICE, switchTo } : { state: 'out', notice: 'You are logged out.' })}
    />
  );
}

/** The main navigation: each page only for those who may use it. */
function links(me: Me): Array<{ path: string; page: string; label: string }> {
  const has = (p: Permission) => me.permissions.includes(p);
  return [
    { path: '/', page: 'overview', label: 'Overview' },
    { path: '/connectors', page: 'connectors', label: 'Connectors' },
    ...(has('connectors:read') ? [{ path: '/connections', page: 'connections', label: 'Connections' }] : []),
    { path: '/api-keys', page: 'api-keys', label: 'API keys' },
    ...(has('webhooks:read') ? [{ path: '/webhooks', page: 'webhooks', label: 'Webhooks' }] : []),
    ...(has('tasks:read') ? [{ path: '/tasks', page: 'tasks', label: 'Tasks' }] : []),
    ...(has('identity:admin')
      ? [
          { path: '/users', page: 'users', label: 'Users' },
          { path: '/groups', page: 'groups', label: 'Groups' },
          { path: '/roles', page: 'roles', label: 'Roles' },
        ]
      : []),
    ...(has('audit:read') ? [{ path: '/audit', page: 'audit', label: 'Audit log' }] : []),
    ...(has('identity:admin') ? [{ path: '/settings', page: 'settings', label: 'Settings' }] : []),
  ];
}

function Layout({ me, route, onLoggedOut }: { me: Me; route: Route; onLoggedOut: (switchTo?: SwitchTo) => void }) {
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

  const logout = async (switchTo?: SwitchTo) => {
    setLoggingOut(true);
    try {
      await api('DELETE', '/sessions/current');
    } finally {
      setLoggingOut(false);
      replace('/');
      onLoggedOut(switchTo);
    }
  };
  const switchTenant = (tenant = '') => logout({ username: me.user.username, tenant });

  const section = route.page.startsWith('connector') ? 'connectors' : route.page;

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
            {links(me).map(({ path, page, label }) => (
              <li key={page}>
                <a href={href(path)} aria-current={section === page ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span>
            <strong>{me.user.username}</strong> in tenant <strong>{me.tenant.name}</strong>
          </span>
          <button type="button" class="secondary" onClick={() => void switchTenant()} disabled={loggingOut}>
            Switch tenant
          </button>
          <button type="button" class="secondary" onClick={() => void logout()} disabled={loggingOut}>
            {loggingOut ? 'Logging out…' : 'Log out'}
          </button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Page me={me} route={route} onSwitchTenant={(tenant) => void switchTenant(tenant)} />
      </main>
    </>
  );
}

function Page({ me, route, onSwitchTenant }: { me: Me; route: Route; onSwitchTenant: (tenant: string) => void }) {
  switch (route.page) {
    case 'overview':
      return <OverviewPage me={me} onSwitchTenant={onSwitchTenant} />;
    case 'connectors':
      return <ConnectorsPage me={me} />;
    case 'connector-new':
      return <ConnectorFormPage onSaved={() => navigate('/connectors')} />;
    case 'connector-edit':
      return <ConnectorFormPage id={route.id} onSaved={() => navigate('/connectors')} />;
    case 'api-keys':
      return <ApiKeysPage me={me} />;
    case 'connections':
      return <ConnectionsPage me={me} />;
    case 'users':
      return <UsersPage me={me} />;
    case 'groups':
      return <GroupsPage me={me} />;
    case 'roles':
      return <RolesPage me={me} />;
    case 'webhooks':
      return <WebhooksPage me={me} />;
    case 'tasks':
      return <TasksPage me={me} />;
    case 'audit':
      return <AuditPage me={me} />;
    case 'settings':
      return <SettingsPage me={me} />;
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
