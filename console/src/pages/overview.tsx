import { api } from '../api';
import { ErrorAlert } from '../components/alert';
import { when } from '../format';
import { href } from '../router';
import type { Me, Tenant } from '../types';
import { useLoad } from '../use-load';

interface OverviewProps {
  me: Me;
  /** Logs out and opens the login page for `tenant` ('' to type one). */
  onSwitchTenant: (tenant: string) => void;
}

/** The tenant, and the server's other tenants when the caller administers them all. */
async function loadTenants(me: Me): Promise<{ current: Tenant; all: Tenant[] | undefined }> {
  const current = await api<Tenant>('GET', '/tenants/current');
  // Only the system tenant's admins may list tenants: nobody else is asked (no 403 to show).
  const all = current.system && me.permissions.includes('identity:admin') ? (await api<{ items: Tenant[] }>('GET', '/tenants')).items : undefined;
  return { current, all };
}

/** Who you are, in which tenant, with which permissions; switching tenant. */
export function OverviewPage({ me, onSwitchTenant }: OverviewProps) {
  const tenants = useLoad(() => loadTenants(me), [me.tenant.id]);
  const others = tenants.data?.all?.filter((t) => t.id !== me.tenant.id) ?? [];
  return (
    <>
      <h1>Overview</h1>
      <section aria-labelledby="you">
        <h2 id="you">You</h2>
        <dl class="facts">
          <dt>User</dt>
          <dd>
            {me.user.username} <code>{me.user.id}</code>
          </dd>
          <dt>Tenant</dt>
          <dd>
            {me.tenant.name} <code>{me.tenant.id}</code>
            {tenants.data?.current.system === true && <span class="hint"> (the system tenant: its admins administer every tenant)</span>}
          </dd>
          <dt>Permissions</dt>
          <dd>{me.permissions.length === 0 ? 'none: ask an administrator for a role' : <ul class="inline">{me.permissions.map((p) => <li key={p}><code>{p}</code></li>)}</ul>}</dd>
        </dl>
      </section>
      <section aria-labelledby="tenants">
        <h2 id="tenants">Tenants</h2>
        <p>
          A console session belongs to one tenant, and a user to one tenant: to work in another tenant, log in there with your user in that tenant.
          <strong> Switch tenant</strong> (at the top) logs you out and keeps your user name.
        </p>
        {tenants.error !== undefined && <ErrorAlert>{tenants.error.message}</ErrorAlert>}
        {others.length > 0 && (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Other tenants on this server</caption>
              <thead>
                <tr>
                  <th scope="col">Tenant</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {others.map((t) => (
                  <tr key={t.id}>
                    <th scope="row">
                      {t.name} <code>{t.id}</code>
                    </th>
                    <td>{when(t.createdAt)}</td>
                    <td class="actions">
                      <button type="button" class="secondary" aria-label={`Switch to ${t.name}`} onClick={() => onSwitchTenant(t.name)}>
                        Switch
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {tenants.data?.all !== undefined && others.length === 0 && <p class="hint">This server has no other tenant yet; create one with <code>POST /api/v1/tenants</code>.</p>}
      </section>
      <section aria-labelledby="next">
        <h2 id="next">What next</h2>
        <ul>
          <li>
            <a href={href('/connectors')}>Connectors</a>: connect third-party accounts (OAuth, API keys) that your applications use through Latchkey.
          </li>
          <li>
            <a href={href('/api-keys')}>API keys</a>: let a program call the Latchkey API.
          </li>
        </ul>
      </section>
    </>
  );
}
