/**
 * Drops `id_token` from a token response, for providers whose issuer is unknown: oauth4webapi would
 * check its `iss` against an issuer we do not have. Latchkey brokers access tokens and never uses
 * the ID token, so nothing is lost. Anything that is not a JSON object passes through untouched and
 * is judged by oauth4webapi.
 */
export async function withoutIdToken(response: Response): Promise<Response> {
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  let out = text;
  if (typeof body === 'object' && body !== null && !Array.isArray(body) && 'id_token' in body) {
    const { id_token: _dropped, ...rest } = body as Record<string, unknown>;
    out = JSON.stringify(rest);
  }
  const headers = new Headers(response.headers);
  // The body is decoded and may be shorter now.
  headers.delete('content-length');
  headers.delete('content-encoding');
  return new Response(out, { status: response.status, statusText: response.statusText, headers });
}
