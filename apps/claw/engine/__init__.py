"""The crush inference engine seen from the rest of the appliance, whichever engine runs there (llama.cpp's
OpenAI-compatible server or Ollama).

* :mod:`claw.engine.errors`: the one error hierarchy (:class:`~claw.engine.errors.CrushError` and its precise
  subclasses).
* :mod:`claw.engine.records`: what the dialects parse the answers into (models, loaded models, chat pieces),
  plain dataclasses.
* :mod:`claw.engine.models`: what the async client answers besides (health, pull progress, ...), pydantic models.
* :mod:`claw.engine.ollama` and :mod:`claw.engine.openai`: each wire format as paths, bodies and parsers, no I/O.
* :mod:`claw.engine.client`: the async client (MCP server, ThreadWeaver, ``claw status``).
* :mod:`claw.engine.sync`: the blocking reader (the crush exporter).

Import from the modules: this package imports none of them, so the crush exporter's path (errors, records,
dialects, sync) never loads the async client or pydantic.
"""
