import { useEffect, useState } from 'preact/hooks';
import { api, type ApiError, asApiError } from '../api';
import { ErrorAlert, NeedsPermission } from '../components/alert';
import { when } from '../format';
import type { Finding, Me, Setting, Tenant } from '../types';
import { useLoad } from '../use-load';

const STATUS_LABELS: Record<Finding['status'], string> = { ok: 'ok', warn: 'warning', fail: 'problem' };

/** A setting's value in words: a secret is only "set" or "not set". */
function shown(setting: Setting): string {
  if (setting.secret) return setting.set ? 'set' : 'not set';
  if (setting.value === null) return 'not set';
  if (Array.isArray(setting.value)) return setting.value.length === 0 ? 'none' : setting.value.join(', ');
  return String(setting.value);
}

/** The server's effective configuration and doctor's checks (system administrators only). */
export function SettingsPage({ me }: { me: Me }) {
  const admin = me.permissions.includes('identity:admin');
  // The settings are the whole server's: only the system tenant's admins may read them, so nobody else is asked.
  const tenant = useLoad(() => (admin ? api<Tenant>('GET', '/tenants/current') : Promise.resolve(undefined)), [admin]);
  const system = tenant.data?.system === true;
  const settings = useLoad(() => (system ? api<{ items: Setting[] }>('GET', '/settings').then((r) => r.items) : Promise.resolve(undefined)), [system]);

  if (!admin) {
    return (
      <>
        <h1>Settings</h1>
        <NeedsPermission permission="identity:admin" what="see the server's settings" />
      </>
    );
  }
  if (tenant.data !== undefined && !system) {
    return (
      <>
        <h1>Settings</h1>
        <div class="empty">
          <h2>Only the system tenant's administrators see the settings</h2>
          <p>
            The settings and checks are the whole server's, shared by every tenant. Log in to the system tenant (the tenant the server created on its first start,
            usually <code>default</code>) as an administrator to see them, or run <code>latchkey doctor</code> where the server runs.
          </p>
        </div>
      </>
    );
  }

  return (
    <>
      <h1>Settings</h1>
      <p class="lead">
        The configuration this server runs with: flags, then <code>LATCHKEY_*</code> environment variables, then the config file, then defaults. Change them where the
        server is started and restart it. Secrets are never shown, only whether they are set.
      </p>
      {tenant.error !== undefined && <ErrorAlert>{tenant.error.message}</ErrorAlert>}
      <Checks enabled={system} />
      <section aria-labelledby="config-title">
        <h2 id="config-title">Effective configuration</h2>
        {settings.error !== undefined && <ErrorAlert>{settings.error.message}</ErrorAlert>}
        {settings.data === undefined && settings.error === undefined && <p class="loading">Loading settings…</p>}
        {settings.data !== undefined && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Setting</th>
                  <th scope="col">Value</th>
                  <th scope="col">Environment variable</th>
                  <th scope="col">Flag</th>
                </tr>
              </thead>
              <tbody>
                {settings.data.map((s) => (
                  <tr key={s.name} data-setting={s.name}>
                    <th scope="row">{s.name}</th>
                    <td>{s.secret ? <span class={`badge ${s.set ? 'ok' : 'builtin'}`}>{shown(s)}</span> : <code>{shown(s)}</code>}</td>
                    <td>
                      <code>{s.env}</code>
                    </td>
                    <td>{s.flag === null ? <span class="hint">none (never a flag)</span> : <code>{s.flag}</code>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}

/** doctor's checks, run at once and again on request, with progress while they run. */
function Checks({ enabled }: { enabled: boolean }) {
  const [findings, setFindings] = useState<Finding[] | undefined>();
  const [ranAt, setRanAt] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | undefined>();
  const [running, setRunning] = useState(false);
  const run = async () => {
    setRunning(true);
    setError(undefined);
    try {
      setFindings((await api<{ items: Finding[] }>('GET', '/doctor')).items);
      setRanAt(new Date().toISOString());
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setRunning(false);
    }
  };
  useEffect(() => {
    if (enabled) void run();
  }, [enabled]);
  const problems = findings?.filter((f) => f.status !== 'ok').length ?? 0;
  return (
    <section aria-labelledby="checks-title" aria-busy={running}>
      <h2 id="checks-title">Checks</h2>
      <p>
        What <code>latchkey doctor</code> checks, against this server's own key and database. The scan that decrypts every object runs only from the command line
        (<code>latchkey doctor --scan</code>).
      </p>
      <div class="inline-form">
        <button type="button" onClick={() => void run()} disabled={running || !enabled}>
          {running ? 'Running checks…' : 'Run checks again'}
        </button>
        {running && (
          <p class="loading">
            <progress aria-label="Running checks" /> Running checks…
          </p>
        )}
      </div>
      <p role="status" aria-live="polite" class="status-line">
        {findings !== undefined && !running && (problems === 0 ? `Everything looks right (checked ${when(ranAt)}).` : `${problems} of ${findings.length} checks need attention.`)}
      </p>
      {error !== undefined && <ErrorAlert>{error.message}</ErrorAlert>}
      {findings !== undefined && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Check</th>
                <th scope="col">Result</th>
                <th scope="col">Finding</th>
              </tr>
            </thead>
            <tbody>
              {findings.map((f) => (
                <tr key={f.check} data-check={f.check}>
                  <th scope="row">{f.check}</th>
                  <td>
                    <span class={`badge ${f.status}`}>{STATUS_LABELS[f.status]}</span>
                  </td>
                  <td>
                    {f.message}
                    {f.fix !== undefined && <div class="hint">Fix: {f.fix}</div>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
