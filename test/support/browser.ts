// A browser for end-to-end tests of Latchkey's pages over a real socket: keeps the cookies it is
// given (by host, as browsers do; it drops the ones cleared), follows no redirect on its own.

export class Browser {
  /** Cookies by host, as browsers keep them: not by port, so servers on one host share them. */
  readonly #cookies = new Map<string, Map<string, string>>();

  /** Every body this browser received, in order. */
  readonly bodies: string[] = [];

  async get(url: string): Promise<Response> {
    return this.#send(url, { method: 'GET' });
  }

  async post(url: string, form: Record<string, string>): Promise<Response> {
    return this.postRaw(url, new URLSearchParams(form).toString());
  }

  async postRaw(url: string, body: string): Promise<Response> {
    return this.#send(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  }

  /** The text of a response, recorded in `bodies`. */
  async text(res: Response): Promise<string> {
    const text = await res.text();
    this.bodies.push(text);
    return text;
  }

  /** A cookie's value, whichever host set it. */
  cookie(name: string): string | undefined {
    for (const jar of this.#cookies.values()) {
      const value = jar.get(name);
      if (value !== undefined) return value;
    }
    return undefined;
  }

  async #send(url: string, init: RequestInit): Promise<Response> {
    const host = new URL(url).hostname;
    const jar = this.#cookies.get(host) ?? new Map<string, string>();
    this.#cookies.set(host, jar);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) } });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  }
}

/** A page's text with HTML's character references undone, to match messages against. */
export function unescapeHtml(html: string): string {
  return html.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** One form of a connect page: where it posts, its hidden values, the names of the fields to fill. */
export interface PageForm {
  action: string;
  label: string;
  hidden: Record<string, string>;
  inputs: string[];
}

/** The forms of a connect page, by the accessible label of their button (`Connect <name>`). */
export function pageForms(html: string): Map<string, PageForm> {
  const forms = new Map<string, PageForm>();
  for (const match of html.matchAll(/<form[^>]*action="([^"]+)"[^>]*>(.*?)<\/form>/gs)) {
    const [, action, inner] = match as unknown as [string, string, string];
    const label = /aria-label="([^"]+)"/.exec(inner)?.[1] ?? '';
    const hidden: Record<string, string> = {};
    for (const h of inner.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) hidden[h[1] as string] = (h[2] as string).replace(/&amp;/g, '&');
    const inputs = [...inner.matchAll(/<input id="[^"]*" type="(?:text|password)" name="([^"]+)"/g)].map((m) => m[1] as string);
    forms.set(label, { action, label, hidden, inputs });
  }
  return forms;
}

/** The page's form token (every form of a connect page carries the same one). */
export function formTokenOf(html: string): string {
  const token = /name="form_token" value="([^"]+)"/.exec(html)?.[1];
  if (token === undefined) throw new Error('The page has no form token.');
  return token;
}
