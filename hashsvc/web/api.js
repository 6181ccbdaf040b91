// The three victim calls of the hashsvc API. Only JSON with hashes is ever sent.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, { body, secret } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (secret !== undefined) {
    headers.Authorization = `Bearer ${secret}`;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, "network", "network error");
  }
  if (response.status === 204) {
    return null;
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = payload && payload.error ? payload.error : {};
    const code = error.code || "http_error";
    throw new ApiError(response.status, code, error.message || response.statusText);
  }
  return payload;
}

/** POST /v1/cases: `{ case_id, secret, hash_count }`. */
export function createCase(payload) {
  return call("POST", "/v1/cases", { body: payload });
}

/** GET /v1/cases/{id}: status, hash counts, matches. */
export function caseStatus(caseId, secret) {
  return call("GET", `/v1/cases/${encodeURIComponent(caseId)}`, { secret });
}

/** DELETE /v1/cases/{id}: the case's hashes are deleted and stop matching. */
export function withdrawCase(caseId, secret) {
  return call("DELETE", `/v1/cases/${encodeURIComponent(caseId)}`, { secret });
}
