/** An API answer: status, and the body parsed as JSON when it is JSON (else the text, or undefined when empty). */
export interface ApiAnswer {
  status: number;
  body: unknown;
  contentType?: string;
}

/** One request to an API server on a Unix socket (`path` under /api/v1 unless it starts with '/'). */
export async function apiRequest(
  socketPath: string,
  method: 'GET' | 'PUT',
  path: string,
  body?: unknown,
  timeoutMs = 120_000,
): Promise<ApiAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  // loaded when a request is made: every `vmm` command line registers `vmm remote`, few send one (issue 18)
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method,
        path: path.startsWith('/') ? path : `/api/v1/${path}`,
        headers: {
          Accept: 'application/json',
          ...(payload !== undefined
            ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
            : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const contentType = res.headers['content-type'];
          let parsed: unknown = text.length ? text : undefined;
          if (text.length && contentType?.startsWith('application/json')) {
            try {
              parsed = JSON.parse(text);
            } catch {
              /* keep the text */
            }
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, contentType });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** An error answer in one line: `404: Error from API: the VM is not created`. */
export function describeAnswer(a: ApiAnswer): string {
  const msgs = Array.isArray(a.body) ? a.body.map(String) : a.body === undefined ? [] : [String(a.body)];
  return [String(a.status), ...msgs].join(': ');
}
