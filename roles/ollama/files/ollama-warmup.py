#!/usr/bin/python3
"""Load Ollama models and keep them loaded: ollama-warmup BASE_URL MODEL...

Run by ollama-warmup.service after the server starts, so the first request after a boot does not pay
for loading the model. The server may still be opening its port: wait up to a minute for it.
"""

import json
import sys
import time
import urllib.request


def main(base_url: str, models: list[str]) -> int:
    for _ in range(60):
        try:
            urllib.request.urlopen(base_url + "/", timeout=2)
            break
        except OSError:
            time.sleep(1)
    for model in models:
        body = json.dumps({"model": model, "keep_alive": -1}).encode()
        request = urllib.request.Request(base_url + "/api/generate", body, {"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=600)
        print(f"ollama-warmup: {model} loaded", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
