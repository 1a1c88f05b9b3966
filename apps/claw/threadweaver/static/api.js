// The console's HTTP API: JSON calls and SSE streams over fetch. The session is the HttpOnly cookie set by
// POST /login, so this code never sees or stores the token.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Called on any 401, so an expired session anywhere brings back the login screen.
let onUnauthenticated = () => {};
export function whenUnauthenticated(handler) {
  onUnauthenticated = handler;
}

function request(method, body) {
  const init = { method, credentials: "same-origin", headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return init;
}

async function failure(response) {
  let code = "error";
  let message = `${response.status} ${response.statusText}`;
  try {
    const error = (await response.json()).error || {};
    code = error.code || code;
    message = error.message || message;
  } catch {
    // not JSON (a proxy's error page): keep the status line
  }
  if (response.status === 401) onUnauthenticated();
  return new ApiError(response.status, code, message);
}

export async function api(method, path, body) {
  const response = await fetch(path, request(method, body));
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** Parse a text/event-stream body into {event, data} objects as bytes arrive. */
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const parsed = parseEvent(block);
      if (parsed) yield parsed;
    }
  }
}

function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length) return null;
  return { event, data: JSON.parse(data.join("\n")) };
}

/** POST and hand each SSE event to onEvent; an HTTP error before the stream starts throws ApiError. */
export async function stream(path, body, onEvent) {
  const response = await fetch(path, request("POST", body));
  if (!response.ok) throw await failure(response);
  for await (const { event, data } of events(response)) onEvent(event, data);
}
