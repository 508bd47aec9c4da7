import { href } from '../router';
import type { Me } from '../types';

/** Who you are, in which tenant, with which permissions. */
export function OverviewPage({ me }: { me: Me }) {
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
          </dd>
          <dt>Permissions</dt>
          <dd>{me.permissions.length === 0 ? 'none: ask an administrator for a role' : <ul class="inline">{me.permissions.map((p) => <li key={p}><code>{p}</code></li>)}</ul>}</dd>
        </dl>
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
