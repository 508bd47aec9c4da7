import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { ErrorAlert } from '../components/alert';
import { Field, fieldMessage } from '../components/field';
import type { Me, SwitchTo } from '../types';

interface LoginPageProps {
  notice?: string | undefined;
  /** After "Switch tenant": the user name kept, the tenant field focused. */
  switchTo?: SwitchTo | undefined;
  onLoggedIn: (me: Me) => void;
}

/** Tenant, user name and password; a session cookie on success. */
export function LoginPage({ notice, switchTo, onLoggedIn }: LoginPageProps) {
  const [tenant, setTenant] = useState(switchTo ? switchTo.tenant : 'default');
  const [username, setUsername] = useState(switchTo?.username ?? '');
  const tenantInput = useRef<HTMLInputElement>(null);
  const passwordInput = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (switchTo) (switchTo.tenant === '' ? tenantInput : passwordInput).current?.focus();
  }, [switchTo]);
  const [password, setPassword] = useState('');
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await api('POST', '/sessions', { tenant, username, password });
      onLoggedIn(await api<Me>('GET', '/me'));
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError('internal_error', 'Logging in failed; try again.', 0));
      setPassword('');
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" class="narrow">
      <h1>Log in to Latchkey</h1>
      {notice !== undefined && error === undefined && <p class="alert info">{notice}</p>}
      {error !== undefined && error.fields.length === 0 && <ErrorAlert>{error.message}</ErrorAlert>}
      <form onSubmit={submit} noValidate aria-busy={busy}>
        <Field id="login-tenant" label="Tenant" hint="The first start of the server creates the tenant “default”." error={fieldMessage('Tenant', error?.field('tenant'))}>
          {(aria) => <input {...aria} ref={tenantInput} name="tenant" autoComplete="organization" required value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} />}
        </Field>
        <Field id="login-username" label="User name" error={fieldMessage('User name', error?.field('username'))}>
          {(aria) => <input {...aria} name="username" autoComplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />}
        </Field>
        <Field
          id="login-password"
          label="Password"
          hint="The first admin's password is printed once at the first start, or kept in the file initial-admin-password of the data directory."
          error={fieldMessage('Password', error?.field('password'))}
        >
          {(aria) => (
            <input {...aria} ref={passwordInput} name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          )}
        </Field>
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
