// OpenClaw's typed plugin hooks -> the LED daemon, through `claw leds signal` (the daemon owns the strip).
// Config-file hooks carry no model or tool events, so this is a plugin. Every call is fire-and-forget:
// before_tool_call fails closed when a hook throws or stalls, and a missing LED must never block a tool.
import { execFile } from "node:child_process";

function led(api, args) {
  const config = api.pluginConfig ?? {};
  try {
    execFile(config.command ?? "/usr/local/bin/claw", ["leds", ...args], { timeout: 5000 }, () => {});
  } catch {}
}

// Activity and errors are separate sources, so the end of a run clears the activity but not an error pulse.
function signal(api, state) {
  led(api, ["signal", "openclaw", state, "--ttl", String(api.pluginConfig?.ttl ?? 30)]);
}

function error(api) {
  led(api, ["signal", "openclaw-error", "error"]);
}

export default {
  id: "claw-leds",
  name: "Claw LEDs",
  description: "Shows agent runs, tool calls and errors on the appliance's LED strip",
  register(api) {
    api.on("model_call_started", () => signal(api, "inference"));
    api.on("before_tool_call", () => signal(api, "tool_call"));
    api.on("after_tool_call", (event) => { if (event?.error) error(api); });
    // agent_end reports success even when the provider was down: model_call_ended carries the failure.
    api.on("model_call_ended", (event) => { if (event?.outcome === "error") error(api); });
    api.on("agent_end", (event) => {
      if (event?.success === false || event?.error) error(api);
      led(api, ["unsignal", "openclaw"]);
    });
  },
};
