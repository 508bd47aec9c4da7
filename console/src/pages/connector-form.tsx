import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { ErrorAlert } from '../components/alert';
import { Field, fieldMessage } from '../components/field';
import { AUTH_TYPE_LABELS, humanize } from '../format';
import { href } from '../router';
import type { AuthType, Connector, Provider, ProviderField, TokenMode } from '../types';
import { useLoad } from '../use-load';

interface ConnectorFormPageProps {
  /** Edit this connector; without it, create one. */
  id?: string;
  onSaved: () => void;
}

/** Create a connector from the provider catalog, or edit one; the form comes from the provider's fields. */
export function ConnectorFormPage({ id, onSaved }: ConnectorFormPageProps) {
  const existing = useLoad(() => (id === undefined ? Promise.resolve(undefined) : api<Connector>('GET', `/connectors/${id}`)), [id]);
  const catalog = useLoad(() => api<{ items: Provider[] }>('GET', '/providers').then((p) => p.items), []);
  const [providerId, setProviderId] = useState('');
  const chosen = existing.data?.provider ?? providerId;
  const provider = useLoad(() => (chosen === '' ? Promise.resolve(undefined) : api<Provider>('GET', `/providers/${encodeURIComponent(chosen)}`)), [chosen]);

  const title = id === undefined ? 'New connector' : `Edit ${existing.data?.name ?? 'connector'}`;
  const loadError = existing.error ?? catalog.error ?? provider.error;
  return (
    <>
      <h1>{title}</h1>
      <p>
        <a href={href('/connectors')}>Back to connectors</a>
      </p>
      {loadError !== undefined && <ErrorAlert>{loadError.message}</ErrorAlert>}
      {id === undefined && (
        <Field id="connector-provider" label="Provider" hint="What the connector reaches. “Generic OpenID Connect” and “Generic OAuth 2.0” work with any standard server.">
          {(aria) => (
            <select {...aria} value={providerId} onChange={(e) => setProviderId(e.currentTarget.value)} disabled={catalog.data === undefined}>
              <option value="">{catalog.data === undefined ? 'Loading the catalog…' : 'Choose a provider'}</option>
              {[...(catalog.data ?? [])]
                .sort((a, b) => a.name.localeCompare(b.name))
                .map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.name}
                  </option>
                ))}
            </select>
          )}
        </Field>
      )}
      {provider.data !== undefined && (id === undefined || existing.data !== undefined) && (
        <ConnectorForm key={`${provider.data.id}:${existing.data?.id ?? 'new'}`} provider={provider.data} existing={existing.data} onSaved={onSaved} />
      )}
    </>
  );
}

interface ConnectorFormProps {
  provider: Provider;
  existing: Connector | undefined;
  onSaved: () => void;
}

/** The auth types whose connector may hold one connection per user. */
const PER_USER: readonly AuthType[] = ['oauth_authorization_code', 'api_key', 'basic', 'bearer'];
/** For a per-user API key, basic or bearer connector each user gives the credential: the connector holds none. */
const usersGiveCredential = (authType: AuthType, tokenMode: TokenMode) => tokenMode === 'per_user' && authType !== 'oauth_authorization_code';

const preferred = (types: AuthType[]): AuthType => (types.includes('oauth_authorization_code') ? 'oauth_authorization_code' : (types[0] ?? 'none'));

function ConnectorForm({ provider, existing, onSaved }: ConnectorFormProps) {
  const [name, setName] = useState(existing?.name ?? provider.name);
  const [authType, setAuthType] = useState<AuthType>(existing?.authType ?? preferred(provider.authTypes));
  const [tokenMode, setTokenMode] = useState<TokenMode>(existing?.tokenMode ?? 'shared');
  const [values, setValues] = useState<Record<string, string>>(() => ({ ...(existing?.config ?? {}) }));
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);

  useEffect(() => setError(undefined), [authType]);

  const mode = existing?.tokenMode ?? tokenMode;
  const fields = provider.fields.filter((f) => f.authTypes.includes(authType) && !(f.location === 'secrets' && usersGiveCredential(authType, mode)));
  const key = (f: ProviderField) => `${f.location}.${f.name}`;
  const setValue = (f: ProviderField, value: string) => setValues((v) => ({ ...v, [key(f)]: value }));
  const valueOf = (f: ProviderField) => (f.location === 'config' ? (values[key(f)] ?? values[f.name] ?? '') : (values[key(f)] ?? ''));

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      if (existing === undefined) {
        const config: Record<string, string> = {};
        const secrets: Record<string, string> = {};
        for (const f of fields) {
          const value = valueOf(f).trim();
          if (value !== '') (f.location === 'config' ? config : secrets)[f.name] = value;
        }
        await api<Connector>('POST', '/connectors', {
          name: name.trim(),
          provider: provider.id,
          authType,
          ...(PER_USER.includes(authType) ? { tokenMode } : {}),
          config,
          secrets,
        });
      } else {
        const config: Record<string, string | null> = {};
        const secrets: Record<string, string> = {};
        for (const f of fields) {
          const value = valueOf(f).trim();
          if (f.location === 'config') {
            const before = existing.config[f.name];
            if (value === '' && before !== undefined) config[f.name] = null;
            else if (value !== '' && value !== before) config[f.name] = value;
          } else if (value !== '') {
            secrets[f.name] = value;
          }
        }
        await api<Connector>('PATCH', `/connectors/${existing.id}`, {
          ...(name.trim() !== existing.name ? { name: name.trim() } : {}),
          ...(Object.keys(config).length > 0 ? { config } : {}),
          ...(Object.keys(secrets).length > 0 ? { secrets } : {}),
        });
      }
      onSaved();
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError('internal_error', 'Saving failed; try again.', 0));
    } finally {
      setBusy(false);
    }
  };

  const known = new Set(['name', 'authType', 'tokenMode', ...fields.map(key)]);
  const unplaced = error !== undefined && !error.fields.some((f) => known.has(f.path));
  return (
    <form onSubmit={submit} noValidate aria-busy={busy} class="connector-form">
      <p class="hint">
        {provider.name}: <a href={provider.docsUrl} target="_blank" rel="noreferrer noopener">the provider's documentation</a> says where to find these values.
      </p>
      {error !== undefined && (unplaced ? <ErrorAlert>{error.message}</ErrorAlert> : <ErrorAlert>The connector was not saved: correct the fields marked below.</ErrorAlert>)}
      <Field id="connector-name" label="Name" hint="How this connector is shown, e.g. “GitHub (production)”." error={fieldMessage('Name', error?.field('name'))}>
        {(aria) => <input {...aria} required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
      </Field>
      {existing === undefined ? (
        <Field id="connector-auth-type" label="Authentication" error={fieldMessage('Authentication', error?.field('authType'))}>
          {(aria) => (
            <select {...aria} value={authType} onChange={(e) => setAuthType(e.currentTarget.value as AuthType)}>
              {provider.authTypes.map((t) => (
                <option key={t} value={t}>
                  {AUTH_TYPE_LABELS[t]}
                </option>
              ))}
            </select>
          )}
        </Field>
      ) : (
        <p>
          Authentication: <strong>{AUTH_TYPE_LABELS[existing.authType]}</strong>
          {PER_USER.includes(existing.authType) && <>, {existing.tokenMode === 'shared' ? 'one shared connection' : 'one connection per user'}</>} (cannot change).
        </p>
      )}
      {existing === undefined && PER_USER.includes(authType) && (
        <fieldset>
          <legend>Connections</legend>
          <label class="choice">
            <input type="radio" name="tokenMode" value="shared" checked={tokenMode === 'shared'} onChange={() => setTokenMode('shared')} /> One shared account for everyone
          </label>
          <label class="choice">
            <input type="radio" name="tokenMode" value="per_user" checked={tokenMode === 'per_user'} onChange={() => setTokenMode('per_user')} /> Each user connects their own account
          </label>
          {error?.field('tokenMode') !== undefined && <div class="field-error">{fieldMessage('Connections', error.field('tokenMode'))}</div>}
        </fieldset>
      )}
      {usersGiveCredential(authType, mode) && (
        <p class="hint">Each user gives their own credential (an end user on the connect page); the connector holds none.</p>
      )}
      {fields.map((f) => (
        <ProviderInput key={key(f)} field={f} value={valueOf(f)} onInput={(value) => setValue(f, value)} isSet={(existing?.secrets as Partial<Record<string, { set: boolean }>> | undefined)?.[f.name]?.set} defaultScopes={provider.defaultScopes} error={error?.field(key(f))} />
      ))}
      {existing === undefined && authType === 'oauth_authorization_code' && (
        <p class="hint">
          Register <code>{`${location.origin}/api/v1/oauth/callback`}</code> as the redirect URI of your app at the provider.
        </p>
      )}
      <div class="buttons">
        <a class="button secondary" href={href('/connectors')}>
          Cancel
        </a>
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : existing === undefined ? 'Create connector' : 'Save changes'}
        </button>
      </div>
    </form>
  );
}

interface ProviderInputProps {
  field: ProviderField;
  value: string;
  onInput: (value: string) => void;
  /** Edit only: whether a secret is stored (its value is never shown). */
  isSet: boolean | undefined;
  defaultScopes: string[];
  error: string | undefined;
}

/** One provider field: text or URL for config, a write-only input for secrets. */
function ProviderInput({ field, value, onInput, isSet, defaultScopes, error }: ProviderInputProps) {
  // The generic http provider's `config.name` is not the connector's own name, which the form asks first.
  const words = field.location === 'config' && field.name === 'name' ? 'Header or parameter name' : humanize(field.name);
  const label = `${words}${field.required || field.location === 'secrets' ? '' : ' (optional)'}`;
  const id = `field-${field.location}-${field.name}`;
  const hint = (
    <>
      {field.description}
      {field.name === 'scopes' && defaultScopes.length > 0 && <> Default: <code>{defaultScopes.join(' ')}</code>.</>}
      {field.location === 'secrets' && isSet !== undefined && (
        <>
          {' '}
          <span class={isSet ? 'badge connected' : 'badge not-connected'}>{isSet ? 'set' : 'not set'}</span>
          {isSet ? ' Leave empty to keep it.' : ''}
        </>
      )}
      {field.location === 'secrets' && ' Stored encrypted; never shown again.'}
    </>
  );
  return (
    <Field id={id} label={label} hint={hint} error={fieldMessage(words, error)}>
      {(aria) => (
        <input
          {...aria}
          name={field.name}
          type={field.secret ? 'password' : field.schema.format === 'uri' ? 'url' : 'text'}
          autoComplete={field.secret ? 'new-password' : 'off'}
          spellcheck={false}
          maxLength={field.schema.maxLength}
          placeholder={field.schema.default !== undefined ? `Default: ${field.schema.default}` : isSet ? '••••••••' : ''}
          required={field.required && !(field.location === 'secrets' && isSet)}
          value={value}
          onInput={(e) => onInput(e.currentTarget.value)}
        />
      )}
    </Field>
  );
}
