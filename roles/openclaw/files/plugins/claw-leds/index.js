// OpenClaw's typed plugin hooks -> the LED daemon, through `claw leds signal` (the daemon owns the strip).
// Config-file hooks carry no model or tool events, so this is a plugin. Every call is fire-and-forget:
// before_tool_call fails closed when a hook throws or stalls, and a missing LED must never block a tool.
import { execFile } from "node:child_process";

// The LED daemon's source names: ^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$ (claw.leds.protocol.SOURCE_PATTERN).
const PREFIX = "agent:";
const MAX_ID = 64 - PREFIX.length;

function led(api, args) {
  const config = api.pluginConfig ?? {};
  try {
    execFile(config.command ?? "/usr/local/bin/claw", ["leds", ...args], { timeout: 5000 }, () => {});
  } catch {}
}

// Which agent a hook is about: the hook context's agentId, else the agent of its session key (agent:<id>:...).
function agentId(event, ctx) {
  const direct = ctx?.agentId ?? event?.agentId;
  if (typeof direct === "string" && direct) return direct;
  const key = ctx?.sessionKey ?? event?.sessionKey;
  const match = typeof key === "string" ? /^agent:([^:]+):/.exec(key) : null;
  return match ? match[1] : "main";
}

// Each agent is its own LED source, so one agent finishing never clears another's activity.
function agentSource(event, ctx) {
  const id = agentId(event, ctx).replace(/[^A-Za-z0-9_.:@-]/g, "_").slice(0, MAX_ID);
  return PREFIX + id;
}

function signal(api, event, ctx, state) {
  led(api, ["signal", agentSource(event, ctx), state, "--ttl", String(api.pluginConfig?.ttl ?? 30)]);
}

// Errors are one separate source: the end of a run clears its agent's activity, never an error pulse.
function error(api) {
  led(api, ["signal", "openclaw-error", "error"]);
}

export default {
  id: "claw-leds",
  name: "Claw LEDs",
  description: "Shows agent runs, tool calls and errors on the appliance's LED strip",
  register(api) {
    api.on("model_call_started", (event, ctx) => signal(api, event, ctx, "inference"));
    api.on("before_tool_call", (event, ctx) => signal(api, event, ctx, "tool_call"));
    api.on("after_tool_call", (event) => { if (event?.error) error(api); });
    // agent_end reports success even when the provider was down: model_call_ended carries the failure.
    api.on("model_call_ended", (event) => { if (event?.outcome === "error") error(api); });
    api.on("agent_end", (event, ctx) => {
      if (event?.success === false || event?.error) error(api);
      led(api, ["unsignal", agentSource(event, ctx)]);
    });
  },
};
