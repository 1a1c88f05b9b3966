"""ThreadWeaver: the appliance's chat console.

Threads are trees of messages in an encrypted SQLite store (:mod:`.store`); provider adapters speak crush (Ollama,
llama.cpp), OpenAI, Anthropic, Mistral and Groq behind one message model (:mod:`.providers`); :mod:`.router` and
:mod:`.governance` pick the provider and enforce spend caps; :mod:`.hooks` runs the operator's Python hooks;
:mod:`.tools` offers the MCP servers' tools to the models, with :mod:`.approvals` for the calls that wait for the
user; :mod:`.app` is the HTTP API.
"""
