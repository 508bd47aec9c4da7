import { useEffect, useState } from 'preact/hooks';

// Paths under /console, kept in the address bar (the server answers every /console/* path with
// the app). Links are plain <a href> elements; a click on one is handled here without a reload.

export const BASE = '/console';

export type Route =
  | { page: 'overview' }
  | { page: 'connectors' }
  | { page: 'connector-new' }
  | { page: 'connector-edit'; id: string }
  | { page: 'api-keys' }
  | { page: 'connections' }
  | { page: 'users' }
  | { page: 'groups' }
  | { page: 'roles' }
  | { page: 'webhooks' }
  | { page: 'tasks' }
  | { page: 'audit' }
  | { page: 'settings' }
  | { page: 'not-found' };

const SIMPLE = ['api-keys', 'connections', 'users', 'groups', 'roles', 'webhooks', 'tasks', 'audit', 'settings'] as const;

export function parseRoute(pathname: string): Route {
  const path = pathname.startsWith(BASE) ? pathname.slice(BASE.length).replace(/\/+$/, '') : pathname;
  if (path === '') return { page: 'overview' };
  if (path === '/connectors') return { page: 'connectors' };
  if (path === '/connectors/new') return { page: 'connector-new' };
  const edit = /^\/connectors\/(connector_[0-9A-Za-z]{1,32})$/.exec(path);
  if (edit?.[1]) return { page: 'connector-edit', id: edit[1] };
  const simple = SIMPLE.find((page) => path === `/${page}`);
  if (simple !== undefined) return { page: simple };
  return { page: 'not-found' };
}

/** The console URL of a path: `href('/api-keys')` is `/console/api-keys`. */
export function href(path: string): string {
  return `${BASE}${path === '/' ? '/' : path}`;
}

const listeners = new Set<() => void>();

/** Goes to a console path without a reload. */
export function navigate(path: string): void {
  history.pushState(null, '', href(path));
  for (const listener of listeners) listener();
}

/** Replaces the current console path (no new history entry), re-rendering the route. */
export function replace(path: string): void {
  history.replaceState(null, '', href(path));
  for (const listener of listeners) listener();
}

/** The current route, re-rendered on navigation (links, back and forward). */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.pathname));
    listeners.add(update);
    addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      removeEventListener('popstate', update);
    };
  }, []);
  return route;
}

/** Handles clicks on same-origin console links (plain left clicks only: a new tab still works). */
export function interceptLinks(root: HTMLElement): void {
  root.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const anchor = (event.target as Element | null)?.closest('a');
    if (!anchor || anchor.target !== '' || anchor.origin !== location.origin || !anchor.pathname.startsWith(BASE)) return;
    // A link within this page (the skip link's #main) is the browser's to follow: it moves focus there.
    if (anchor.hash !== '' && anchor.pathname === location.pathname) return;
    event.preventDefault();
    const path = anchor.pathname.slice(BASE.length) || '/';
    if (anchor.pathname !== location.pathname) navigate(path);
  });
}
